//! The broker's counters, in the three forms they are read: the plain
//! status page, Prometheus' text format (`/metrics`) and `$SYS/` topics.

use crate::broker::Shared;
use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
};

/// Whether a value only grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
}

/// One value, under its names.
#[derive(Clone, Debug)]
pub(crate) struct Metric {
    /// Status page name; Prometheus name after `mqtt_broker_`.
    pub(crate) name: &'static str,
    /// Topic under `$SYS/broker/` (mosquitto's names where it has one).
    pub(crate) sys: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    pub(crate) value: u64,
}

/// Every counter, now.
pub(crate) fn read(shared: &Shared) -> Vec<Metric> {
    let (sessions, subscriptions, retained) = {
        let state = shared.lock();
        (
            state.sessions.len() as u64,
            state.tree.len() as u64,
            state.retained.len() as u64,
        )
    };
    let s = &shared.stats;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let m = |name, sys, help, kind, value| Metric {
        name,
        sys,
        help,
        kind,
        value,
    };
    vec![
        m(
            "uptime_seconds",
            "uptime",
            "Seconds since the broker started.",
            Kind::Gauge,
            shared.started.elapsed().as_secs(),
        ),
        m(
            "connections",
            "clients/connected",
            "Open client connections.",
            Kind::Gauge,
            s.connections.load(Ordering::Relaxed) as u64,
        ),
        m(
            "sessions",
            "clients/total",
            "Sessions, connected or not.",
            Kind::Gauge,
            sessions,
        ),
        m(
            "subscriptions",
            "subscriptions/count",
            "Subscriptions of every session.",
            Kind::Gauge,
            subscriptions,
        ),
        m(
            "retained",
            "retained messages/count",
            "Retained messages.",
            Kind::Gauge,
            retained,
        ),
        m(
            "messages_received",
            "messages/received",
            "PUBLISH packets received from clients.",
            Kind::Counter,
            load(&s.messages_received),
        ),
        m(
            "messages_sent",
            "messages/sent",
            "PUBLISH packets sent to clients.",
            Kind::Counter,
            load(&s.messages_sent),
        ),
        m(
            "messages_dropped",
            "messages/dropped",
            "Messages not delivered because a client's queue was full.",
            Kind::Counter,
            load(&s.messages_dropped),
        ),
        m(
            "bytes_received",
            "bytes/received",
            "Bytes read from clients.",
            Kind::Counter,
            load(&s.bytes_received),
        ),
        m(
            "bytes_sent",
            "bytes/sent",
            "Bytes written to clients.",
            Kind::Counter,
            load(&s.bytes_sent),
        ),
        m(
            "connections_refused",
            "clients/refused",
            "Connections refused for a limit.",
            Kind::Counter,
            load(&s.connections_refused),
        ),
    ]
}

/// The plain-text status page: one `name value` line per counter.
pub(crate) fn status(shared: &Shared) -> String {
    let mut out = String::from("mqtt broker\n");
    for m in read(shared) {
        let _ = writeln!(out, "{} {}", m.name, m.value);
    }
    out
}

/// The counters in Prometheus' text format, prefixed `mqtt_broker_`.
pub(crate) fn prometheus(shared: &Shared) -> String {
    let mut out = String::new();
    for m in read(shared) {
        let (name, kind) = match m.kind {
            Kind::Counter => (format!("mqtt_broker_{}_total", m.name), "counter"),
            Kind::Gauge => (format!("mqtt_broker_{}", m.name), "gauge"),
        };
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} {kind}\n{name} {}",
            m.help, m.value
        );
    }
    out
}
