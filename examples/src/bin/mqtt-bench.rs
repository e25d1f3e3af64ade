//! A load generator for MQTT brokers, built on mqtt-codec directly so it is
//! never the bottleneck and treats every broker the same.
//!
//! Scenarios (each bounded and self-stopping): `fanin` (P publishers to one
//! subscriber), `fanout` (one publisher to N subscribers), `pairs` (K
//! independent publisher/subscriber pairs), `shared` (publishers to a
//! shared subscription group of G members), `conns` (C idle connections:
//! connect rate and the broker's RSS per connection). Over TCP (`mqtt://`)
//! or WebSocket (`ws://`), MQTT 3.1.1 or 5.
//!
//! Reports delivered messages per second, end-to-end latency percentiles
//! (a timestamp travels in each payload), messages lost, and, given the
//! broker's PID, its CPU time and peak RSS: one JSON line, then text.

use bytes::{BufMut, BytesMut};
use clap::{Parser, ValueEnum};
use mqtt_codec::{
    Connect, Decoder, Encode, MqttStr, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec,
    PubRel, Publish, QoS, QosPid, Subscribe, Subscription, TopicFilter, TopicName,
};
use mqtt_transport_tcp::{Connection, ServerAddr};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf},
    sync::{Semaphore, mpsc},
};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Scenario {
    /// P publishers to 1 subscriber.
    Fanin,
    /// 1 publisher to N subscribers on one topic.
    Fanout,
    /// K independent publisher/subscriber pairs.
    Pairs,
    /// P publishers to a shared subscription group of G members.
    Shared,
    /// C idle connections held open.
    Conns,
}

/// Load scenarios against an MQTT broker.
#[derive(Parser, Debug, Clone)]
#[command(name = "mqtt-bench")]
struct Args {
    /// The scenario.
    scenario: Scenario,
    /// Broker URL: mqtt://host:port or ws://host:port/mqtt.
    #[arg(short = 'L', long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    /// MQTT version: 4 (3.1.1) or 5.
    #[arg(short = 'V', long = "protocol-version", default_value_t = 4)]
    protocol: u8,
    /// QoS of the publications and subscriptions.
    #[arg(short, long, default_value_t = 0)]
    qos: u8,
    /// Payload size in bytes (at least 16: sequence number and timestamp).
    #[arg(short = 's', long, default_value_t = 64)]
    size: usize,
    /// Publishers (fanin, shared; pairs: the number of pairs).
    #[arg(short = 'P', long, default_value_t = 4)]
    publishers: usize,
    /// Subscribers (fanout; shared: group members).
    #[arg(short = 'S', long, default_value_t = 1)]
    subscribers: usize,
    /// Messages per publisher.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    messages: u64,
    /// Messages in flight per publisher (QoS 0: between PINGREQ barriers);
    /// for `conns`, connection attempts in flight.
    #[arg(short = 'w', long, default_value_t = 100)]
    window: usize,
    /// Total publish rate in messages per second (0: as fast as possible).
    #[arg(short = 'r', long, default_value_t = 0)]
    rate: u64,
    /// Idle connections for `conns`.
    #[arg(short = 'c', long, default_value_t = 1000)]
    connections: usize,
    /// The broker's PID, to report its CPU time and peak RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// A label for the run (e.g. the broker's name), copied to the JSON.
    #[arg(long, default_value = "")]
    label: String,
    /// Give up waiting for deliveries after this many seconds of silence.
    #[arg(long, default_value_t = 5)]
    idle_timeout: u64,
    /// Subscribers keep their sessions (Clean Session 0; in MQTT 5, Clean
    /// Start 0 and a Session Expiry Interval of an hour), so a broker that
    /// stores sessions stores each message for them until acknowledged.
    #[arg(long)]
    persistent: bool,
    /// Connect from this many loopback addresses, 127.0.0.1 up to
    /// 127.0.0.N, in turn, as clients on N hosts would (the broker must be
    /// on loopback). From one address, with ten thousand or more
    /// connections to one port open or in TIME_WAIT, the kernel's search for
    /// a free source port takes most of the load's CPU time and sets the
    /// connect rate (15,000 connections: 10k connects/s from one address,
    /// 31-35k from 32).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    sources: u8,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Link {
    rd: ReadHalf<Connection>,
    wr: WriteHalf<Connection>,
    decoder: Decoder,
    buf: BytesMut,
    /// Free room to make before each read.
    chunk: usize,
}

fn version(args: &Args) -> ProtocolVersion {
    if args.protocol == 5 {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    }
}

fn qos(args: &Args) -> QoS {
    match args.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

async fn open(args: &Args, id: &str) -> Result<Link, Error> {
    open_session(args, id, false).await
}

/// Connects; a `persistent` session outlives the connection.
async fn open_session(args: &Args, id: &str, persistent: bool) -> Result<Link, Error> {
    let addr = ServerAddr::parse(&args.url)?;
    let mut options = mqtt_transport_ws::WsConnectOptions::default();
    if args.sources > 1 {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let k = NEXT.fetch_add(1, Ordering::Relaxed) % u64::from(args.sources);
        options.connect.local_addr = Some(std::net::Ipv4Addr::new(127, 0, 0, 1 + k as u8).into());
    }
    let conn = if addr.scheme.is_websocket() {
        mqtt_transport_ws::connect(&addr, &options).await?
    } else {
        mqtt_transport_tcp::connect(&addr, &options.connect).await?
    };
    let v = version(args);
    let (rd, mut wr) = tokio::io::split(conn);
    let mut c = Connect::new(v, MqttStr::try_from(id)?);
    // Some brokers (rumqttd) refuse 0; runs are shorter than this.
    c.keep_alive = 600;
    if v.is_v5() {
        c.properties.receive_maximum = std::num::NonZeroU16::new(u16::MAX);
    }
    if persistent {
        c.clean_start = false;
        if v.is_v5() {
            c.properties.session_expiry_interval = Some(3600);
        }
    }
    let mut out = BytesMut::new();
    c.encode(v, &mut out)?;
    send(&mut wr, &out).await?;
    let mut link = Link {
        rd,
        wr,
        decoder: Decoder::client(v).with_max_packet_size(u32::MAX),
        buf: BytesMut::new(),
        // Room for the CONNACK only: an idle link (`conns`) keeps no more.
        chunk: 256,
    };
    match link.next().await? {
        Packet::ConnAck(a) if !a.reason.is_error() => {
            link.chunk = 64 * 1024;
            Ok(link)
        }
        other => Err(format!("connection refused: {other:?}").into()),
    }
}

impl Link {
    async fn next(&mut self) -> Result<Packet, Error> {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf)? {
                return Ok(p);
            }
            self.buf.reserve(self.chunk);
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err("connection closed".into());
            }
        }
    }

    async fn subscribe(&mut self, v: ProtocolVersion, filter: &str, qos: QoS) -> Result<(), Error> {
        let s = Subscribe {
            packet_id: PacketId::MIN,
            subscriptions: vec![Subscription::new(TopicFilter::try_from(filter)?, qos)],
            properties: Default::default(),
        };
        let mut out = BytesMut::new();
        s.encode(v, &mut out)?;
        send(&mut self.wr, &out).await?;
        loop {
            if let Packet::SubAck(a) = self.next().await? {
                if a.reasons.iter().any(|r| r.granted_qos().is_none()) {
                    return Err("subscription refused".into());
                }
                return Ok(());
            }
        }
    }
}

/// What subscribers record.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    latencies: Mutex<Vec<u32>>,
    last: Mutex<Option<Instant>>,
}

fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Reads publications until told to stop; answers QoS 1 and 2.
async fn subscriber(
    mut link: Link,
    v: ProtocolVersion,
    epoch: Instant,
    tally: Arc<Tally>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut lat = Vec::with_capacity(1 << 16);
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        // Handle every whole packet already buffered.
        let mut n = 0u64;
        while let Some(p) = link.decoder.decode(&mut link.buf)? {
            match p {
                Packet::Publish(p) => {
                    let payload = p.payload();
                    if payload.len() >= 16 {
                        let sent = u64::from_be_bytes(payload[8..16].try_into().unwrap_or([0; 8]));
                        let us = now_ns(epoch).saturating_sub(sent) / 1000;
                        lat.push(us.min(u64::from(u32::MAX)) as u32);
                    }
                    n += 1;
                    match p.qos_pid {
                        QosPid::AtLeastOnce(id) => {
                            PubAck::new(id).encode(v, &mut out)?;
                        }
                        QosPid::ExactlyOnce(id) => {
                            PubRec::new(id).encode(v, &mut out)?;
                        }
                        QosPid::AtMostOnce => {}
                    }
                }
                Packet::PubRel(r) => {
                    PubComp::new(r.packet_id).encode(v, &mut out)?;
                }
                _ => {}
            }
        }
        if n > 0 {
            tally.received.fetch_add(n, Ordering::Relaxed);
            *tally.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        if !out.is_empty() {
            send(&mut link.wr, &out).await?;
            out.clear();
        }
        link.buf.reserve(64 * 1024);
        tokio::select! {
            r = link.rd.read_buf(&mut link.buf) => {
                if r? == 0 {
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
    tally
        .latencies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(lat);
    Ok(())
}

/// Publishes `count` messages with at most `window` in flight.
async fn publisher(
    link: Link,
    args: Args,
    topic: String,
    epoch: Instant,
    count: u64,
    interval: Option<Duration>,
) -> Result<(), Error> {
    let v = version(&args);
    let qos = qos(&args);
    let window = args.window.max(1);
    let Link {
        mut rd,
        mut wr,
        mut decoder,
        mut buf,
        ..
    } = link;
    let permits = Arc::new(Semaphore::new(window));
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Packet>();
    // QoS 0: a PINGREQ after every `chunk` messages; its PINGRESP gives the
    // chunk's permits back (the broker answers in order).
    let chunk = (window / 2).max(1);
    let reader_permits = permits.clone();
    let done = Arc::new(AtomicU64::new(0));
    let reader_done = done.clone();
    let reader = tokio::spawn(async move {
        loop {
            while let Some(p) = decoder.decode(&mut buf)? {
                match p {
                    Packet::PubAck(_) | Packet::PubComp(_) => {
                        reader_permits.add_permits(1);
                        reader_done.fetch_add(1, Ordering::Relaxed);
                    }
                    Packet::PubRec(r) => {
                        let _ = ctl_tx.send(Packet::PubRel(PubRel::new(r.packet_id)));
                    }
                    Packet::PingResp => reader_permits.add_permits(chunk),
                    _ => {}
                }
            }
            buf.reserve(64 * 1024);
            if rd.read_buf(&mut buf).await? == 0 {
                return Ok::<(), Error>(());
            }
        }
    });
    let topic = TopicName::try_from(topic.as_str())?;
    let mut payload = vec![0u8; args.size.max(16)];
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut next_id: u16 = 0;
    let mut sent = 0u64;
    let started = Instant::now();
    while sent < count {
        // Wait for room, then take all the room there is.
        let stall = tokio::time::sleep(Duration::from_secs(args.idle_timeout));
        let first = tokio::select! {
            p = permits.acquire() => { p?.forget(); true }
            c = ctl_rx.recv() => match c {
                Some(c) => { c.encode(v, &mut out)?; false }
                None => return Err("the broker closed the connection".into()),
            },
            _ = stall => return Err(format!("stalled: no acknowledgement for {} s", args.idle_timeout).into()),
        };
        let mut batch = if first { 1 } else { 0 };
        while batch < 64 && sent + batch < count {
            match permits.try_acquire() {
                Ok(p) => {
                    p.forget();
                    batch += 1;
                }
                Err(_) => break,
            }
        }
        while let Ok(c) = ctl_rx.try_recv() {
            c.encode(v, &mut out)?;
        }
        for _ in 0..batch {
            if let Some(iv) = interval {
                let due = started + iv.mul_f64(sent as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            payload[..8].copy_from_slice(&sent.to_be_bytes());
            payload[8..16].copy_from_slice(&now_ns(epoch).to_be_bytes());
            let mut p = Publish::new(topic.clone(), bytes::Bytes::copy_from_slice(&payload));
            p.qos_pid = if qos == QoS::AtMostOnce {
                QosPid::AtMostOnce
            } else {
                next_id = if next_id == u16::MAX { 1 } else { next_id + 1 };
                QosPid::new(qos, PacketId::new(next_id).unwrap_or(PacketId::MIN))
            };
            p.encode(v, &mut out)?;
            sent += 1;
            if qos == QoS::AtMostOnce && sent.is_multiple_of(chunk as u64) {
                out.put_slice(&[0xC0, 0]);
            }
            if interval.is_some() {
                send(&mut wr, &out).await?;
                out.clear();
            }
        }
        if !out.is_empty() {
            send(&mut wr, &out).await?;
            out.clear();
        }
    }
    // Wait for the last acknowledgements (and PUBRELs to send).
    if qos != QoS::AtMostOnce {
        let deadline = Instant::now() + Duration::from_secs(args.idle_timeout);
        while done.load(Ordering::Relaxed) < count && Instant::now() < deadline {
            tokio::select! {
                c = ctl_rx.recv() => {
                    if let Some(c) = c {
                        c.encode(v, &mut out)?;
                        while let Ok(c) = ctl_rx.try_recv() { c.encode(v, &mut out)?; }
                        send(&mut wr, &out).await?;
                        out.clear();
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    } else {
        // A last barrier so that everything was at least read by the broker.
        send(&mut wr, &[0xC0, 0]).await?;
        let _ = tokio::time::timeout(
            Duration::from_secs(args.idle_timeout),
            permits.acquire_many(window as u32),
        )
        .await;
    }
    let _ = send(&mut wr, &[0xE0, 0]).await;
    reader.abort();
    Ok(())
}

/// Writes and flushes (a WebSocket connection sends a frame per flush).
async fn send(w: &mut WriteHalf<Connection>, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The CPU time `pid` has used: the sum over its threads of the scheduler's
/// nanosecond count, unless threads that have exited make the 10 ms ticks
/// of `stat` (which count them) the larger by more than two ticks.
fn cpu_seconds(pid: u32) -> f64 {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|t| {
                let ns = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
                ns.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum::<u64>()
        })
        .unwrap_or(0) as f64
        / 1e9;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let ticks = (t(11) + t(12)) / 100.0;
    if threads + 0.02 >= ticks {
        threads
    } else {
        ticks
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Every connection is a descriptor; room for them all in the table
    // before the runtime's threads start (see
    // `mqtt_transport_tcp::reserve_descriptors`).
    let _ = mqtt_transport_tcp::raise_descriptor_limit();
    let links = args.connections.max(2 * args.publishers + args.subscribers);
    let _ = mqtt_transport_tcp::reserve_descriptors(links + 64);
    // `conns` opens connections from one thread: a second one would only
    // add wake-ups between them to each connect.
    let runtime = if args.scenario == Scenario::Conns {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mqtt-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqtt-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let v = version(&args);
    let run_id = format!("{:x}", std::process::id());
    let cpu0 = args.pid.map(cpu_seconds);
    if args.sources > 1 {
        let host = ServerAddr::parse(&args.url)?.host;
        let loopback = host == "localhost"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!("--sources needs a broker on 127.0.0.0/8, not {host}").into());
        }
    }
    if args.scenario == Scenario::Conns {
        return conns(&args, &run_id, cpu0).await;
    }
    let epoch = Instant::now();
    let tally = Arc::new(Tally::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Topology: (subscriber filters, publisher topics).
    let base = format!("bench/{run_id}");
    let (subs, pubs, expected): (Vec<String>, Vec<String>, u64) = match args.scenario {
        Scenario::Fanin => (
            vec![format!("{base}/fanin/+")],
            (0..args.publishers)
                .map(|i| format!("{base}/fanin/{i}"))
                .collect(),
            args.publishers as u64 * args.messages,
        ),
        Scenario::Fanout => (
            (0..args.subscribers)
                .map(|_| format!("{base}/fanout"))
                .collect(),
            vec![format!("{base}/fanout")],
            args.subscribers as u64 * args.messages,
        ),
        Scenario::Pairs => (
            (0..args.publishers)
                .map(|i| format!("{base}/pair/{i}"))
                .collect(),
            (0..args.publishers)
                .map(|i| format!("{base}/pair/{i}"))
                .collect(),
            args.publishers as u64 * args.messages,
        ),
        Scenario::Shared => (
            (0..args.subscribers)
                .map(|_| format!("$share/g{run_id}/{base}/shared/+"))
                .collect(),
            (0..args.publishers)
                .map(|i| format!("{base}/shared/{i}"))
                .collect(),
            args.publishers as u64 * args.messages,
        ),
        Scenario::Conns => unreachable!("handled above"),
    };
    let mut sub_tasks = Vec::new();
    for (i, filter) in subs.iter().enumerate() {
        let mut link = open_session(&args, &format!("b{run_id}s{i}"), args.persistent).await?;
        link.subscribe(v, filter, qos(&args)).await?;
        sub_tasks.push(tokio::spawn(subscriber(
            link,
            v,
            epoch,
            tally.clone(),
            stop_rx.clone(),
        )));
    }
    let interval =
        (args.rate > 0).then(|| Duration::from_secs_f64(pubs.len() as f64 / args.rate as f64));
    let mut pub_links = Vec::new();
    for (i, _) in pubs.iter().enumerate() {
        pub_links.push(open(&args, &format!("b{run_id}p{i}")).await?);
    }
    let started = Instant::now();
    let mut pub_tasks = Vec::new();
    for (link, topic) in pub_links.into_iter().zip(pubs) {
        pub_tasks.push(tokio::spawn(publisher(
            link,
            args.clone(),
            topic,
            epoch,
            args.messages,
            interval,
        )));
    }
    for t in pub_tasks {
        t.await??;
    }
    // Wait for deliveries to finish (or stall).
    loop {
        let got = tally.received.load(Ordering::Relaxed);
        if got >= expected {
            break;
        }
        let last = (*tally.last.lock().unwrap_or_else(|e| e.into_inner())).unwrap_or(started);
        if last.elapsed() > Duration::from_secs(args.idle_timeout) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let end = (*tally.last.lock().unwrap_or_else(|e| e.into_inner())).unwrap_or_else(Instant::now);
    let elapsed = end
        .saturating_duration_since(started)
        .as_secs_f64()
        .max(1e-9);
    let _ = stop_tx.send(true);
    for t in sub_tasks {
        let _ = t.await;
    }
    let received = tally.received.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *tally.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_unstable();
    let cpu = args.pid.map(|p| cpu_seconds(p) - cpu0.unwrap_or(0.0));
    let rss = args.pid.and_then(|p| proc_field(p, "status", "VmHWM:"));
    let rate = received as f64 / elapsed;
    let (p50, p99, p999) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
    );
    println!(
        "{{\"label\":\"{}\",\"scenario\":\"{:?}\",\"url\":\"{}\",\"version\":{},\"qos\":{},\"size\":{},\"publishers\":{},\"subscribers\":{},\"window\":{},\"rate\":{},\"expected\":{},\"received\":{},\"lost\":{},\"seconds\":{:.3},\"msgs_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"broker_cpu_s\":{},\"broker_peak_rss_kb\":{}}}",
        args.label,
        args.scenario,
        args.url,
        args.protocol,
        args.qos,
        args.size,
        if args.scenario == Scenario::Fanout {
            1
        } else {
            args.publishers
        },
        if matches!(args.scenario, Scenario::Fanin) {
            1
        } else if args.scenario == Scenario::Pairs {
            args.publishers
        } else {
            args.subscribers
        },
        args.window,
        args.rate,
        expected,
        received,
        expected.saturating_sub(received),
        elapsed,
        rate,
        p50,
        p99,
        p999,
        cpu.map_or("null".into(), |c| format!("{c:.3}")),
        rss.map_or("null".into(), |r| r.to_string()),
    );
    println!(
        "{:?} {} v{} qos{} {}B: {received}/{expected} delivered in {elapsed:.2}s = {rate:.0} msgs/s; latency p50 {p50} µs, p99 {p99} µs, p99.9 {p999} µs{}",
        args.scenario,
        args.url,
        args.protocol,
        args.qos,
        args.size,
        cpu.map_or(String::new(), |c| format!(
            "; broker CPU {c:.2}s, peak RSS {} KB",
            rss.unwrap_or(0)
        ))
    );
    if received < expected {
        eprintln!("mqtt-bench: {} messages lost", expected - received);
    }
    Ok(())
}

/// Opens idle connections: the connect rate and the broker's memory per connection.
async fn conns(args: &Args, run_id: &str, cpu0: Option<f64>) -> Result<(), Error> {
    let rss_before = args.pid.and_then(|p| proc_field(p, "status", "VmRSS:"));
    let started = Instant::now();
    // `window` connectors, each opening connections one after another until
    // all are open: no task or wake-up per connection beyond the connect.
    let next = Arc::new(AtomicU64::new(0));
    let total = args.connections as u64;
    let mut connectors = Vec::new();
    for _ in 0..args.window.clamp(1, args.connections.max(1)) {
        let (args, next, run_id) = (args.clone(), next.clone(), run_id.to_string());
        connectors.push(tokio::spawn(async move {
            let mut opened = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, Error>(opened);
                }
                let t = Instant::now();
                let link = open(&args, &format!("b{run_id}c{i}")).await?;
                let waited = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                opened.push((link, waited));
            }
        }));
    }
    let mut links = Vec::with_capacity(args.connections);
    let mut waits = Vec::with_capacity(args.connections);
    for c in connectors {
        for (link, waited) in c.await?? {
            links.push(link);
            waits.push(waited);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // From the start of a connect to its CONNACK.
    waits.sort_unstable();
    let (p50, p99, max) = (
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or(0),
    );
    // The broker's CPU time for accepting them (closing comes later).
    let cpu = args.pid.map(|p| cpu_seconds(p) - cpu0.unwrap_or(0.0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = args.pid.and_then(|p| proc_field(p, "status", "VmRSS:"));
    let per_conn = match (rss_before, rss_after) {
        (Some(a), Some(b)) => Some((b.saturating_sub(a)) as f64 / args.connections as f64),
        _ => None,
    };
    let rate = args.connections as f64 / elapsed;
    println!(
        "{{\"label\":\"{}\",\"scenario\":\"Conns\",\"url\":\"{}\",\"version\":{},\"connections\":{},\"seconds\":{:.3},\"connects_per_s\":{:.0},\"rss_kb_per_conn\":{},\"broker_cpu_s\":{},\"broker_cpu_us_per_connect\":{},\"connect_p50_us\":{p50},\"connect_p99_us\":{p99},\"connect_max_us\":{max}}}",
        args.label,
        args.url,
        args.protocol,
        args.connections,
        elapsed,
        rate,
        per_conn.map_or("null".into(), |k| format!("{k:.2}")),
        cpu.map_or("null".into(), |c| format!("{c:.3}")),
        cpu.map_or("null".into(), |c| format!(
            "{:.1}",
            c * 1e6 / args.connections as f64
        ))
    );
    println!(
        "Conns {} v{}: {} connections in {elapsed:.2}s = {rate:.0} connects/s (connect to CONNACK p50 {p50} µs, p99 {p99} µs, max {max} µs){}",
        args.url,
        args.protocol,
        args.connections,
        per_conn.map_or(String::new(), |k| format!(
            "; broker RSS {k:.2} KB per connection"
        ))
    );
    drop(links);
    Ok(())
}
