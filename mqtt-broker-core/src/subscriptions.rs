//! The subscription tree: which sessions want a message published on a
//! topic.
//!
//! A trie over topic levels, so matching a topic visits only the branches
//! its levels (and `+` / `#`) lead to: unrelated subscriptions cost nothing.

use mqtt_codec::{SubscriptionOptions, TopicFilter};
use std::{collections::HashMap, hash::Hash, num::NonZeroU32};

/// One session's subscription at a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscriber {
    /// The options it subscribed with (QoS is the granted maximum).
    pub options: SubscriptionOptions,
    /// Its Subscription Identifier (MQTT 5), if any.
    pub identifier: Option<NonZeroU32>,
}

/// A match for a published topic: the subscriber, and the shared group it
/// was picked from (`None` for an ordinary subscription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match<K> {
    /// The session.
    pub key: K,
    /// Its subscription.
    pub subscriber: Subscriber,
    /// Whether this came from a shared subscription (`$share/{group}/...`).
    pub shared: bool,
}

/// Where a walk puts what it finds.
struct Matched<'m, 'a, K> {
    out: &'m mut Vec<Match<&'a K>>,
    /// Filters with ordinary subscribers that matched.
    filters: &'m mut usize,
}

/// Picks which member of a shared subscription group receives a message.
pub trait SharedStrategy: Send + Sync {
    /// Returns the index in `0..members` of the member to deliver to;
    /// `cursor` is the group's own state (it starts at 0).
    fn pick(&self, topic: &str, members: usize, cursor: &mut usize) -> usize;
}

/// Each member in turn (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl SharedStrategy for RoundRobin {
    fn pick(&self, _topic: &str, members: usize, cursor: &mut usize) -> usize {
        let i = *cursor % members;
        *cursor = cursor.wrapping_add(1);
        i
    }
}

/// The same member for the same topic while the group does not change
/// (hash of the topic), so one topic's messages stay in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct StickyByTopic;

impl SharedStrategy for StickyByTopic {
    fn pick(&self, topic: &str, members: usize, _cursor: &mut usize) -> usize {
        // FNV-1a: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in topic.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        (h % members as u64) as usize
    }
}

#[derive(Debug)]
struct Group<K> {
    members: Vec<(K, Subscriber)>,
    /// The strategy's state (an atomic, used with relaxed loads and
    /// stores: matching takes the tree shared, so that matches can borrow
    /// their keys, and the tree stays `Sync`).
    cursor: std::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
struct Node<K> {
    /// By level (foldhash: keyed per process, a third of SipHash's cost
    /// on the short strings levels are).
    children: HashMap<Box<str>, Node<K>, foldhash::fast::RandomState>,
    subscribers: HashMap<K, Subscriber>,
    groups: HashMap<Box<str>, Group<K>>,
    /// Whether `children` holds `+` / `#` (most nodes hold neither: the
    /// lookups are skipped).
    plus: bool,
    hash: bool,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: HashMap::default(),
            subscribers: HashMap::new(),
            groups: HashMap::new(),
            plus: false,
            hash: false,
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.groups.is_empty()
    }
}

/// Topic filters with their subscribers, keyed by session `K`.
///
/// ```
/// use mqtt_broker_core::subscriptions::{Subscriber, SubscriptionTree};
/// use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter};
///
/// let mut tree = SubscriptionTree::new();
/// let sub = Subscriber { options: SubscriptionOptions::qos(QoS::AtLeastOnce), identifier: None };
/// tree.subscribe(&TopicFilter::try_from("sensors/+/t").unwrap(), "a", sub);
/// tree.subscribe(&TopicFilter::try_from("$share/g/sensors/#").unwrap(), "b", sub);
/// let keys: Vec<_> = tree.matches("sensors/1/t").into_iter().map(|m| m.key).collect();
/// assert_eq!(keys.len(), 2);
/// ```
pub struct SubscriptionTree<K> {
    root: Node<K>,
    len: usize,
    strategy: Box<dyn SharedStrategy>,
}

impl<K> std::fmt::Debug for SubscriptionTree<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionTree")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash> Default for SubscriptionTree<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// The group name and the levels of a filter.
fn split(filter: &TopicFilter) -> (Option<&str>, std::str::Split<'_, char>) {
    match filter.shared() {
        Some((group, inner)) => (Some(group), inner.split('/')),
        None => (None, filter.as_str().split('/')),
    }
}

impl<K: Clone + Eq + Hash> SubscriptionTree<K> {
    /// An empty tree; shared groups pick members round robin.
    pub fn new() -> Self {
        Self::with_strategy(Box::new(RoundRobin))
    }

    /// An empty tree with its own shared-subscription strategy.
    pub fn with_strategy(strategy: Box<dyn SharedStrategy>) -> Self {
        SubscriptionTree {
            root: Node::default(),
            len: 0,
            strategy,
        }
    }

    /// Subscriptions held (each session's filter counts once).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces `key`'s subscription to `filter`; returns whether
    /// it existed before (for Retain Handling 1).
    pub fn subscribe(&mut self, filter: &TopicFilter, key: K, subscriber: Subscriber) -> bool {
        let (group, levels) = split(filter);
        let mut node = &mut self.root;
        for level in levels {
            node.plus |= level == "+";
            node.hash |= level == "#";
            node = node.children.entry(level.into()).or_default();
        }
        let existed = match group {
            None => node.subscribers.insert(key, subscriber).is_some(),
            Some(g) => {
                let group = node.groups.entry(g.into()).or_insert_with(|| Group {
                    members: Vec::new(),
                    cursor: std::sync::atomic::AtomicUsize::new(0),
                });
                match group.members.iter_mut().find(|(k, _)| *k == key) {
                    Some(m) => {
                        m.1 = subscriber;
                        true
                    }
                    None => {
                        group.members.push((key, subscriber));
                        false
                    }
                }
            }
        };
        if !existed {
            self.len += 1;
        }
        existed
    }

    /// Removes `key`'s subscription to exactly `filter` (no wildcard
    /// expansion, [MQTT-3.10.4-1]); returns whether there was one.
    pub fn unsubscribe(&mut self, filter: &TopicFilter, key: &K) -> bool {
        let (group, levels) = split(filter);
        let levels: Vec<&str> = levels.collect();
        let removed = Self::remove_at(&mut self.root, &levels, group, key);
        if removed {
            self.len -= 1;
        }
        removed
    }

    fn remove_at(node: &mut Node<K>, levels: &[&str], group: Option<&str>, key: &K) -> bool {
        let Some((first, rest)) = levels.split_first() else {
            return match group {
                None => node.subscribers.remove(key).is_some(),
                Some(g) => {
                    let Some(grp) = node.groups.get_mut(g) else {
                        return false;
                    };
                    let before = grp.members.len();
                    grp.members.retain(|(k, _)| k != key);
                    let removed = grp.members.len() != before;
                    if grp.members.is_empty() {
                        node.groups.remove(g);
                    }
                    removed
                }
            };
        };
        let Some(child) = node.children.get_mut(*first) else {
            return false;
        };
        let removed = Self::remove_at(child, rest, group, key);
        if child.is_empty() {
            node.children.remove(*first);
            node.plus &= *first != "+";
            node.hash &= *first != "#";
        }
        removed
    }

    /// The subscriptions matching `topic`: every ordinary subscriber whose
    /// filter matches, and one member per matching shared group. A session
    /// with several matching filters appears once per filter.
    ///
    /// Filters starting with a wildcard do not match topics starting with
    /// `$` ([MQTT-4.7.2-1]); matching is exact and case-sensitive
    /// ([MQTT-4.7.3-4]).
    pub fn matches(&mut self, topic: &str) -> Vec<Match<K>> {
        let mut out = Vec::new();
        self.collect_matches(topic, &mut out);
        out
    }

    /// Appends the matches of `topic` to `out`, as [`matches`](Self::matches)
    /// returns them, and returns how many filters with ordinary (not
    /// shared) subscribers matched: with at most one, no session appears
    /// twice among the ordinary matches, and there is nothing to merge.
    pub fn collect_matches(&mut self, topic: &str, out: &mut Vec<Match<K>>) -> usize {
        let mut refs = Vec::new();
        let filters = self.collect_match_refs(topic, &mut refs);
        out.extend(refs.into_iter().map(|m| Match {
            key: m.key.clone(),
            subscriber: m.subscriber,
            shared: m.shared,
        }));
        filters
    }

    /// As [`collect_matches`](Self::collect_matches), with the keys
    /// borrowed from the tree rather than cloned.
    pub fn collect_match_refs<'a>(&'a self, topic: &str, out: &mut Vec<Match<&'a K>>) -> usize {
        let dollar = topic.starts_with('$');
        let strategy = &*self.strategy;
        let mut filters = 0;
        Self::walk(
            &self.root,
            Some(topic),
            dollar,
            topic,
            strategy,
            &mut Matched {
                out,
                filters: &mut filters,
            },
        );
        filters
    }

    fn collect<'a>(
        node: &'a Node<K>,
        topic: &str,
        strategy: &dyn SharedStrategy,
        m: &mut Matched<'_, 'a, K>,
    ) {
        if !node.subscribers.is_empty() {
            *m.filters += 1;
        }
        let out = &mut *m.out;
        out.extend(node.subscribers.iter().map(|(k, s)| Match {
            key: k,
            subscriber: *s,
            shared: false,
        }));
        for group in node.groups.values() {
            if group.members.is_empty() {
                continue;
            }
            use std::sync::atomic::Ordering::Relaxed;
            let mut cursor = group.cursor.load(Relaxed);
            let i = strategy.pick(topic, group.members.len(), &mut cursor);
            group.cursor.store(cursor, Relaxed);
            if let Some((k, s)) = group.members.get(i) {
                out.push(Match {
                    key: k,
                    subscriber: *s,
                    shared: true,
                });
            }
        }
    }

    /// `levels`: what is left of the topic (`None` past its last level).
    fn walk<'a>(
        node: &'a Node<K>,
        levels: Option<&str>,
        first_is_dollar: bool,
        topic: &str,
        strategy: &dyn SharedStrategy,
        out: &mut Matched<'_, 'a, K>,
    ) {
        let wildcards_allowed = !first_is_dollar;
        // `#` matches this level and everything below, including the parent
        // ("a/#" matches "a").
        if wildcards_allowed
            && node.hash
            && let Some(hash) = node.children.get("#")
        {
            Self::collect(hash, topic, strategy, out);
        }
        let Some(levels) = levels else {
            Self::collect(node, topic, strategy, out);
            return;
        };
        let (first, rest) = match levels.bytes().position(|b| b == b'/') {
            Some(i) => (&levels[..i], Some(&levels[i + 1..])),
            None => (levels, None),
        };
        if let Some(child) = node.children.get(first) {
            Self::walk(child, rest, false, topic, strategy, out);
        }
        if wildcards_allowed
            && node.plus
            && first != "+"
            && let Some(plus) = node.children.get("+")
        {
            Self::walk(plus, rest, false, topic, strategy, out);
        }
    }
}
