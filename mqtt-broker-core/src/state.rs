//! What the broker shares across connections: subscriptions, retained
//! messages, sessions and pending wills, behind one lock.

use crate::{
    mailbox::{Mailbox, Push},
    retained::RetainedStore,
    store::{Change, Loaded, MessageState, StoredMessage, StoredRetained, StoredSession, unix_ms},
    subscriptions::{Match, Subscriber, SubscriptionTree},
};
use mqtt_codec::{DisconnectReason, Publish, QoS, QosPid, TopicFilter};
use mqtt_session::SessionState;
use mqtt_session::{FlightState, RequestId};
use std::{
    collections::{HashMap, hash_map::Entry},
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

/// Asks a connection's task to end.
#[derive(Debug)]
pub(crate) enum Control {
    /// Disconnect with `reason`; on a session takeover, hand the session
    /// state over, and say whether the new connection resumes the session.
    Kick {
        reason: DisconnectReason,
        handover: Option<oneshot::Sender<SessionState>>,
        continues: bool,
    },
}

/// Where other tasks leave a connection its [`Control`]s: a few bytes per
/// connection (no channel buffer) for something that happens at most a
/// couple of times in its life.
#[derive(Debug, Default)]
pub(crate) struct ControlSlot {
    pending: std::sync::Mutex<Vec<Control>>,
    notify: crate::signal::Signal,
    closed: std::sync::atomic::AtomicBool,
}

impl ControlSlot {
    /// Leaves `control` for the connection; gives it back when the
    /// connection's task has ended.
    pub(crate) fn send(&self, control: Control) -> Result<(), Control> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(control);
        }
        pending.push(control);
        drop(pending);
        self.notify.notify();
        Ok(())
    }

    /// The next control, when one comes.
    pub(crate) async fn recv(&self) -> Control {
        std::future::poll_fn(|cx| match self.poll_recv(cx) {
            Some(control) => std::task::Poll::Ready(control),
            None => std::task::Poll::Pending,
        })
        .await
    }

    /// The next control if one is waiting; otherwise `cx` is woken when one
    /// comes. Once the signal is taken, the control is taken in the same
    /// poll: nothing is lost if the caller stops waiting.
    pub(crate) fn poll_recv(&self, cx: &mut std::task::Context<'_>) -> Option<Control> {
        while self.notify.poll_wait(cx).is_ready() {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if !pending.is_empty() {
                let control = pending.remove(0);
                if !pending.is_empty() {
                    self.notify.notify();
                }
                return Some(control);
            }
        }
        None
    }

    /// The connection's task ended: later sends fail, pending ones are
    /// dropped (their senders see the handover refused).
    pub(crate) fn close(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        pending.clear();
    }
}

#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) id: u64,
    pub(crate) control: Arc<ControlSlot>,
}

/// A session, online or not.
#[derive(Debug)]
pub(crate) struct SessionRecord {
    pub(crate) subscriptions: HashMap<TopicFilter, Subscriber>,
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) live: Option<Live>,
    /// State kept while offline (in flight and awaiting release).
    /// (Boxed: a connected session has none.)
    pub(crate) stored: Option<Box<SessionState>>,
    /// Session Expiry Interval in seconds (`u32::MAX`: never).
    pub(crate) expiry: u32,
    /// When an offline session ends.
    pub(crate) expires_at: Option<Instant>,
    /// The user who made it (`None`: anonymous); only that user resumes
    /// or takes it over.
    pub(crate) owner: Option<Arc<str>>,
}

/// What [`State::route`] did.
#[derive(Debug, Default)]
pub(crate) struct Routed {
    /// Copies dropped because a mailbox was full.
    pub(crate) dropped: u64,
    /// A connected session's mailbox above its high-water mark.
    pub(crate) congested: Option<Arc<Mailbox>>,
    /// A connected session's mailbox is filling up
    /// ([`Level::filling`](crate::mailbox::Level)).
    pub(crate) pressure: bool,
    /// Copies queued.
    pub(crate) copies: usize,
}

/// A Will waiting for its delay (or for its session to end).
#[derive(Debug)]
pub(crate) struct PendingWill {
    pub(crate) publish: Publish,
    pub(crate) publisher: Arc<str>,
    pub(crate) at: Instant,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tree: SubscriptionTree<Arc<str>>,
    pub(crate) retained: RetainedStore,
    /// Boxed: the table's slots stay small (it is sized for twice the
    /// sessions it holds).
    pub(crate) sessions: HashMap<Arc<str>, Box<SessionRecord>, foldhash::fast::RandomState>,
    pub(crate) wills: HashMap<Arc<str>, PendingWill>,
    pub(crate) mailbox_limit: usize,
    /// Whether changes are stored (a store is configured).
    pub(crate) storing: bool,
    /// Changes made under the current lock, handed to the store's group
    /// commit as one batch when the lock is released.
    pub(crate) journal: Vec<Change>,
    /// The last number given to a stored message.
    pub(crate) last_seq: u64,
    /// When the sweeper runs next: a deadline set later than this needs no
    /// wake-up (a sweep looks at every session).
    pub(crate) sweep_at: Option<Instant>,
}

impl State {
    pub(crate) fn new(mailbox_limit: usize) -> State {
        State {
            tree: SubscriptionTree::new(),
            retained: RetainedStore::default(),
            sessions: HashMap::default(),
            wills: HashMap::new(),
            mailbox_limit,
            storing: false,
            journal: Vec::new(),
            last_seq: 0,
            sweep_at: None,
        }
    }

    /// Notes a new deadline (a session's expiry, a will's delay); returns
    /// whether the sweeper must be woken for it, which is only when it
    /// comes before the sweeper's next run.
    pub(crate) fn schedule_sweep(&mut self, at: Instant) -> bool {
        let sooner = self.sweep_at.is_none_or(|s| at < s);
        if sooner {
            self.sweep_at = Some(at);
        }
        sooner
    }

    /// Journals a change, when storing.
    pub(crate) fn record(&mut self, change: Change) {
        if self.storing {
            self.journal.push(change);
        }
    }

    /// Journals a persistent session (subscriptions, expiry; its messages
    /// are journaled as they come and go).
    pub(crate) fn save_session(&mut self, client_id: &Arc<str>, now: Instant) {
        if !self.storing {
            return;
        }
        let Some(r) = self.sessions.get(client_id) else {
            return;
        };
        if r.expiry == 0 {
            return;
        }
        let now_s = unix_ms() / 1000;
        let session = StoredSession {
            expiry: r.expiry,
            expires_at: r
                .expires_at
                .filter(|_| r.live.is_none())
                .map(|t| now_s + t.saturating_duration_since(now).as_secs()),
            subscriptions: r
                .subscriptions
                .iter()
                .map(|(f, s)| (f.clone(), *s))
                .collect(),
            owner: r.owner.clone(),
        };
        self.journal
            .push(Change::Session(client_id.clone(), session));
    }

    /// Sets or clears a retained message ([MQTT-3.3.1-5..7]), journaled.
    pub(crate) fn set_retained(&mut self, publish: Publish, now: Instant) {
        if self.storing {
            let topic: Arc<str> = publish.topic().into();
            let stored = (!publish.payload().is_empty()).then(|| StoredRetained {
                publish: publish.clone(),
                set_at_ms: unix_ms(),
            });
            self.journal.push(Change::Retain(topic, stored));
        }
        self.retained.set(publish, now);
    }

    /// Takes back what a store kept: sessions (offline, their expiry
    /// counted from `now` when they were connected at the crash), the
    /// messages owed to them (QoS 2 ones sent under an identifier go back
    /// in flight under it), and retained messages.
    pub(crate) fn restore(&mut self, loaded: Loaded, now: Instant) {
        let now_ms = unix_ms();
        let ago = |ms: u64| Duration::from_millis(now_ms.saturating_sub(ms));
        for r in loaded.retained {
            let at = now.checked_sub(ago(r.set_at_ms)).unwrap_or(now);
            self.retained.set(r.publish, at);
        }
        for (id, s) in loaded.sessions {
            let mailbox = Arc::new(Mailbox::new(self.mailbox_limit.max(s.messages.len())));
            let mut inflight = Vec::new();
            let mut pids = std::collections::HashSet::new();
            for (seq, m) in s.messages {
                self.last_seq = self.last_seq.max(seq);
                let at = now.checked_sub(ago(m.routed_at_ms)).unwrap_or(now);
                let mut p = m.publish;
                // Two records under one packet id cannot both be in flight:
                // the later is sent again as a new message, never dropped.
                let state = match m.state {
                    MessageState::Sent(pid) | MessageState::Received(pid) if !pids.insert(pid) => {
                        MessageState::Queued
                    }
                    other => other,
                };
                match state {
                    MessageState::Queued => {
                        mailbox.push(p, at, seq, false);
                    }
                    MessageState::Sent(pid) => {
                        p.qos_pid = QosPid::new(QoS::ExactlyOnce, pid);
                        inflight.push((pid, RequestId::from_raw(seq), FlightState::Qos2Sent(p)));
                    }
                    MessageState::Received(pid) => {
                        inflight.push((pid, RequestId::from_raw(seq), FlightState::Released));
                    }
                }
            }
            for (filter, sub) in &s.session.subscriptions {
                self.tree.subscribe(filter, id.clone(), *sub);
            }
            let expires_at = match s.session.expires_at {
                Some(at_s) => {
                    let left = at_s.saturating_sub(now_ms / 1000);
                    Some(now + Duration::from_secs(left))
                }
                None => expiry_deadline(s.session.expiry, now),
            };
            let stored = mqtt_session::SessionState {
                inflight,
                queued: Vec::new(),
                awaiting_release: s.awaiting_release,
            };
            self.sessions.insert(
                id,
                Box::new(SessionRecord {
                    subscriptions: s.session.subscriptions.into_iter().collect(),
                    mailbox,
                    live: None,
                    stored: Some(Box::new(stored)),
                    expiry: s.session.expiry,
                    expires_at,
                    owner: s.session.owner,
                }),
            );
        }
    }

    /// Routes an accepted message to every matching session
    /// ([MQTT-4.5.0-1]); see [`route_burst`](Self::route_burst).
    pub(crate) fn route(&mut self, from: Option<&str>, publish: &Publish, now: Instant) -> Routed {
        self.route_burst(from, std::slice::from_ref(publish), now)
    }

    /// Routes accepted messages, in order, to every matching session
    /// ([MQTT-4.5.0-1]). One copy per session at the highest matching QoS
    /// with every matching Subscription Identifier ([MQTT-3.3.4-2],
    /// [MQTT-3.3.4-3]); shared groups get one copy for the member picked.
    /// The payload is shared, never copied. Messages in a row on one topic
    /// are matched once and reach each session's mailbox in one step
    /// (unless a shared group matches: its member is picked per message).
    /// Reports the copies dropped because a session's mailbox was full, and
    /// a connected session's mailbox above its high-water mark, for the
    /// publisher to wait on.
    pub(crate) fn route_burst(
        &mut self,
        from: Option<&str>,
        burst: &[Publish],
        now: Instant,
    ) -> Routed {
        let mut routed = Routed::default();
        let mut i = 0;
        while i < burst.len() {
            let topic = burst[i].topic();
            let run = burst[i..].iter().take_while(|p| p.topic() == topic).count();
            let mut rest = &burst[i..i + run];
            while !rest.is_empty() {
                let n = self.route_run(from, rest, now, &mut routed);
                rest = &rest[n..];
            }
            i += run;
        }
        routed
    }

    /// Routes messages that share one topic: all of them, or only the
    /// first when a shared group matches (each message picks its member).
    /// Returns how many it routed.
    fn route_run(
        &mut self,
        from: Option<&str>,
        run: &[Publish],
        now: Instant,
        routed: &mut Routed,
    ) -> usize {
        let Some(first) = run.first() else { return 0 };
        let State {
            tree,
            sessions,
            journal,
            last_seq,
            storing,
            mailbox_limit,
            ..
        } = self;
        let mut matches = Vec::new();
        let filters = tree.collect_match_refs(first.topic(), &mut matches);
        if matches.is_empty() {
            return run.len();
        }
        let run = if matches.iter().any(|m| m.shared) {
            &run[..1]
        } else {
            run
        };
        // A session's subscriptions all hold the session map's key `Arc`
        // (see `on_subscribe`): sorted by pointer, a session's ordinary
        // matches are adjacent, and merging them costs no string compares.
        // Matches of one filter are of distinct sessions already.
        if filters > 1 {
            matches.sort_unstable_by_key(|m| (Arc::as_ptr(m.key) as *const u8 as usize, m.shared));
        }
        // Merge a session's ordinary subscriptions; shared ones stay apart.
        // (session, QoS, Retain As Published, identifiers, from a shared group)
        #[allow(clippy::type_complexity)]
        let mut merged: Vec<(&Arc<str>, QoS, bool, Vec<NonZeroU32>, bool)> =
            Vec::with_capacity(matches.len());
        for Match {
            key,
            subscriber,
            shared,
        } in matches
        {
            let o = subscriber.options;
            // [MQTT-3.8.3-3]: No Local.
            if o.no_local && from == Some(&**key) {
                continue;
            }
            let existing = if shared {
                None
            } else {
                merged.last_mut().filter(|m| !m.4 && Arc::ptr_eq(m.0, key))
            };
            match existing {
                Some(m) => {
                    m.1 = m.1.max(o.qos);
                    m.2 |= o.retain_as_published;
                    m.3.extend(subscriber.identifier);
                }
                None => merged.push((
                    key,
                    o.qos,
                    o.retain_as_published,
                    subscriber.identifier.into_iter().collect(),
                    shared,
                )),
            }
        }
        let unix = if *storing { unix_ms() } else { 0 };
        for (key, qos, retain_as_published, ids, _) in merged {
            let Some(record) = sessions.get(key) else {
                continue;
            };
            let online = record.live.is_some();
            // A persistent session's QoS 1 and 2 messages are stored.
            let store = *storing && record.expiry > 0;
            let copies = run.iter().map(|p| {
                let out = outgoing_copy(p, qos, retain_as_published && p.retain, ids.clone());
                let seq = if store && out.qos() != QoS::AtMostOnce {
                    *last_seq += 1;
                    *last_seq
                } else {
                    0
                };
                (out, seq)
            });
            let mut dropped = 0;
            let mut first_drop = false;
            let level = record
                .mailbox
                .push_all(copies, now, online, |queued, pushed| {
                    match pushed {
                        Push::Queued => routed.copies += 1,
                        Push::Dropped { first } => {
                            dropped += 1;
                            first_drop |= first;
                        }
                        Push::Skipped => {}
                    }
                    if let Some(q) = queued.filter(|q| q.seq != 0) {
                        journal.push(Change::Message(
                            key.clone(),
                            q.seq,
                            StoredMessage {
                                publish: q.publish.clone(),
                                state: MessageState::Queued,
                                routed_at_ms: unix,
                            },
                        ));
                    }
                });
            if online && from != Some(&**key) && level.filling {
                routed.pressure = true;
            }
            if online
                && routed.congested.is_none()
                && from != Some(&**key)
                && (level.congested || dropped > 0)
                && !record.mailbox.is_stuck(now)
            {
                routed.congested = Some(record.mailbox.clone());
            }
            routed.dropped += dropped;
            if first_drop {
                tracing::warn!(
                    client_id = %key,
                    limit = *mailbox_limit,
                    "client's queue is full: new messages for it are dropped"
                );
            }
        }
        run.len()
    }

    /// Removes a session and its subscriptions.
    pub(crate) fn remove_session(&mut self, client_id: &Arc<str>) {
        if let Some(record) = self.sessions.remove(client_id) {
            for filter in record.subscriptions.keys() {
                self.tree.unsubscribe(filter, client_id);
            }
            record.mailbox.clear();
            if record.expiry > 0 {
                self.record(Change::RemoveSession(client_id.clone()));
            }
        }
    }

    /// The session for `client_id`, created when missing or when `clean`;
    /// returns whether an existing one was kept.
    pub(crate) fn open_session(&mut self, client_id: &Arc<str>, clean: bool) -> bool {
        if clean {
            self.remove_session(client_id);
        }
        match self.sessions.entry(client_id.clone()) {
            Entry::Occupied(_) => true,
            Entry::Vacant(v) => {
                v.insert(Box::new(SessionRecord {
                    subscriptions: HashMap::new(),
                    mailbox: Arc::new(Mailbox::new(self.mailbox_limit)),
                    live: None,
                    stored: None,
                    expiry: 0,
                    expires_at: None,
                    owner: None,
                }));
                false
            }
        }
    }

    /// Publishes wills whose delay passed and ends sessions whose expiry
    /// passed (publishing their pending wills, [MQTT-3.1.2-8]); returns the
    /// next deadline.
    pub(crate) fn sweep(&mut self, now: Instant) -> Option<Instant> {
        self.retained.purge_expired(now);
        let expired: Vec<Arc<str>> = self
            .sessions
            .iter()
            .filter(|(_, r)| r.live.is_none() && r.expires_at.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for id in &expired {
            tracing::debug!(client_id = %id, "session expired");
            self.remove_session(id);
        }
        let due: Vec<Arc<str>> = self
            .wills
            .iter()
            .filter(|(id, w)| w.at <= now || expired.contains(id))
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            if let Some(w) = self.wills.remove(&id) {
                self.publish_will(w, now);
            }
        }
        let sessions = self.sessions.values().filter_map(|r| r.expires_at);
        let wills = self.wills.values().map(|w| w.at);
        sessions.chain(wills).min()
    }

    pub(crate) fn publish_will(&mut self, will: PendingWill, now: Instant) {
        tracing::debug!(client_id = %will.publisher, topic = will.publish.topic(), "publishing will");
        // [MQTT-3.1.2-14], [MQTT-3.1.2-15]
        if will.publish.retain {
            self.set_retained(will.publish.clone(), now);
        }
        self.route(Some(&will.publisher), &will.publish, now);
    }
}

/// The copy of `publish` one subscriber gets: its QoS (at most the
/// granted one, [MQTT-3.8.4-8]), RETAIN per Retain As Published
/// ([MQTT-3.3.1-12], [MQTT-3.3.1-13]), DUP cleared ([MQTT-3.3.1-3]), its
/// Subscription Identifiers; other properties unchanged ([MQTT-3.3.2-4],
/// [MQTT-3.3.2-15..20]).
pub(crate) fn outgoing_copy(
    publish: &Publish,
    granted: QoS,
    retain: bool,
    ids: Vec<NonZeroU32>,
) -> Publish {
    let mut out = publish.clone();
    out.dup = false;
    out.retain = retain;
    let qos = publish.qos().min(granted);
    out.qos_pid = QosPid::new(qos, mqtt_codec::PacketId::MIN);
    if !ids.is_empty() || !publish.properties().subscription_identifiers.is_empty() {
        out.properties_mut().subscription_identifiers = ids;
    }
    out
}

/// Session Expiry in seconds as a duration (`u32::MAX`: never).
pub(crate) fn expiry_deadline(expiry: u32, now: Instant) -> Option<Instant> {
    if expiry == u32::MAX {
        None
    } else {
        Some(now + Duration::from_secs(u64::from(expiry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{SubscriptionOptions, TopicName};
    use proptest::prelude::*;

    const FILTERS: &[&str] = &[
        "a/b",
        "a/+",
        "+/b",
        "#",
        "a/#",
        "$share/g/a/b",
        "$share/g/+/b",
    ];
    const TOPICS: &[&str] = &["a/b", "a/c", "b/b"];
    const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

    /// Sessions 0..n with the given subscriptions (session, filter, QoS,
    /// no local, identifier); session 0 is the publisher.
    fn state(subs: &[(usize, usize, u8, bool, u32)], online: &[bool]) -> State {
        let mut state = State::new(1000);
        for (i, &on) in online.iter().enumerate() {
            let id: Arc<str> = format!("c{i}").into();
            state.open_session(&id, false);
            if on && let Some(r) = state.sessions.get_mut(&id) {
                r.live = Some(Live {
                    id: i as u64,
                    control: Arc::default(),
                });
            }
        }
        for &(session, filter, qos, no_local, identifier) in subs {
            let session = session % online.len();
            let filter = TopicFilter::from_static(FILTERS[filter % FILTERS.len()]).unwrap();
            let key = state
                .sessions
                .get_key_value(format!("c{session}").as_str())
                .map(|(k, _)| k.clone())
                .unwrap();
            let mut options = SubscriptionOptions::qos(QOS[usize::from(qos % 3)]);
            options.no_local = no_local && !filter.is_shared();
            let subscriber = Subscriber {
                options,
                identifier: NonZeroU32::new(identifier % 3),
            };
            state.tree.subscribe(&filter, key.clone(), subscriber);
            state
                .sessions
                .get_mut(&key)
                .unwrap()
                .subscriptions
                .insert(filter, subscriber);
        }
        state
    }

    /// What each session's mailbox holds.
    fn mailboxes(state: &State) -> Vec<(String, Vec<Publish>)> {
        let mut out: Vec<_> = state
            .sessions
            .iter()
            .map(|(k, r)| {
                let mut q = std::collections::VecDeque::new();
                r.mailbox.take(usize::MAX, &mut q);
                (k.to_string(), q.into_iter().map(|q| q.publish).collect())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A connected subscriber's mailbox past a sixteenth of its bound puts
    /// its publishers under pressure (they then route one message at a
    /// time); the publisher's own mailbox does not count.
    #[test]
    fn a_filling_mailbox_reports_pressure() {
        // Sessions c0 (the publisher, No Local) and c1, both online and
        // subscribed to everything.
        let subs = [(0, 3, 1, true, 0), (1, 3, 1, false, 0)];
        let mut state = state(&subs, &[true, true]);
        state.mailbox_limit = 160;
        for r in state.sessions.values_mut() {
            r.mailbox = Arc::new(Mailbox::new(160));
        }
        let message =
            |i: usize| Publish::new(TopicName::from_static("a/b").unwrap(), format!("{i}"));
        let now = Instant::now();
        let few: Vec<Publish> = (0..9).map(message).collect();
        assert!(!state.route_burst(Some("c0"), &few, now).pressure);
        // 10 of 160 in c1's mailbox now.
        let routed = state.route_burst(Some("c0"), &[message(9)], now);
        assert!(routed.pressure);
        assert_eq!(routed.copies, 1);
        // From c1: c0's mailbox holds one message, and c1's own filling
        // mailbox does not hold c1 back.
        assert!(!state.route_burst(Some("c1"), &[message(10)], now).pressure);
    }

    proptest! {
        /// Routing a burst leaves every mailbox as routing its messages one
        /// by one does: same copies, same order, same shared-group picks.
        #[test]
        fn a_burst_routes_as_its_messages_one_by_one(
            subs in proptest::collection::vec((0..5usize, 0..7usize, 0..3u8, any::<bool>(), 0..3u32), 0..12),
            online in proptest::collection::vec(any::<bool>(), 1..5),
            burst in proptest::collection::vec((0..3usize, 0..3u8, any::<bool>()), 1..20),
        ) {
            let publishes: Vec<Publish> = burst
                .iter()
                .enumerate()
                .map(|(i, &(topic, qos, retain))| {
                    let mut p = Publish::new(
                        TopicName::from_static(TOPICS[topic]).unwrap(),
                        format!("{i}"),
                    );
                    p.qos_pid = QosPid::new(QOS[usize::from(qos % 3)], mqtt_codec::PacketId::MIN);
                    p.retain = retain;
                    p
                })
                .collect();
            let now = Instant::now();
            let mut one_by_one = state(&subs, &online);
            let mut batched = state(&subs, &online);
            let mut dropped = 0;
            for p in &publishes {
                dropped += one_by_one.route(Some("c0"), p, now).dropped;
            }
            let routed = batched.route_burst(Some("c0"), &publishes, now);
            prop_assert_eq!(routed.dropped, dropped);
            prop_assert_eq!(mailboxes(&batched), mailboxes(&one_by_one));
        }
    }
}
