//! Retained messages: the last retained PUBLISH of each topic.

use mqtt_codec::{Publish, TopicFilter};
use std::{collections::HashMap, time::Instant};

/// A retained message and when it was stored (for Message Expiry).
#[derive(Clone, Debug)]
pub struct Retained {
    /// The message, as published (payload shared, not copied).
    pub publish: Publish,
    /// When it was stored.
    pub stored_at: Instant,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    message: Option<Retained>,
}

/// Retained messages by topic, in a trie so that a wildcard lookup visits
/// only matching branches.
///
/// ```
/// use mqtt_broker_core::retained::RetainedStore;
/// use mqtt_codec::{Publish, TopicFilter, TopicName};
/// use std::time::Instant;
///
/// let mut store = RetainedStore::default();
/// let now = Instant::now();
/// store.set(Publish::new(TopicName::try_from("a/b").unwrap(), &b"on"[..]), now);
/// let found = store.matching(&TopicFilter::try_from("a/+").unwrap(), now);
/// assert_eq!(found[0].payload(), b"on");
/// // An empty payload deletes it.
/// store.set(Publish::new(TopicName::try_from("a/b").unwrap(), &b""[..]), now);
/// assert!(store.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct RetainedStore {
    root: Node,
    len: usize,
}

impl RetainedStore {
    /// Messages held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `publish` as its topic's retained message, replacing any
    /// ([MQTT-3.3.1-5]); an empty payload deletes it instead and is never
    /// stored ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
    pub fn set(&mut self, publish: Publish, now: Instant) {
        let topic = publish.topic().to_owned();
        let levels: Vec<&str> = topic.split('/').collect();
        if publish.payload().is_empty() {
            if Self::remove(&mut self.root, &levels) {
                self.len -= 1;
            }
            return;
        }
        let mut node = &mut self.root;
        for level in levels {
            node = node.children.entry(level.into()).or_default();
        }
        if node.message.is_none() {
            self.len += 1;
        }
        node.message = Some(Retained {
            publish,
            stored_at: now,
        });
    }

    fn remove(node: &mut Node, levels: &[&str]) -> bool {
        let Some((first, rest)) = levels.split_first() else {
            return node.message.take().is_some();
        };
        let Some(child) = node.children.get_mut(*first) else {
            return false;
        };
        let removed = Self::remove(child, rest);
        if child.message.is_none() && child.children.is_empty() {
            node.children.remove(*first);
        }
        removed
    }

    /// The retained message of exactly `topic`.
    pub fn get(&self, topic: &str) -> Option<&Retained> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref()
    }

    /// Retained messages whose topics match `filter` (for a shared filter,
    /// its inner filter), with Message Expiry Interval counted down to what
    /// is left at `now`; expired ones are left out ([MQTT-3.3.2-5],
    /// [MQTT-3.3.2-6]). Wildcards at the first level skip `$` topics
    /// ([MQTT-4.7.2-1]).
    pub fn matching(&self, filter: &TopicFilter, now: Instant) -> Vec<Publish> {
        let inner = filter.shared().map_or(filter.as_str(), |(_, f)| f);
        let levels: Vec<&str> = inner.split('/').collect();
        let mut out = Vec::new();
        Self::walk(&self.root, &levels, true, now, &mut out);
        out
    }

    fn push(node: &Node, now: Instant, out: &mut Vec<Publish>) {
        if let Some(r) = &node.message
            && let Some(p) = expire(&r.publish, r.stored_at, now)
        {
            out.push(p);
        }
    }

    fn push_all(node: &Node, now: Instant, out: &mut Vec<Publish>) {
        Self::push(node, now, out);
        for child in node.children.values() {
            Self::push_all(child, now, out);
        }
    }

    fn walk(node: &Node, levels: &[&str], root: bool, now: Instant, out: &mut Vec<Publish>) {
        let Some((first, rest)) = levels.split_first() else {
            Self::push(node, now, out);
            return;
        };
        match *first {
            "#" => {
                // The parent level too ("a/#" matches "a").
                if !root {
                    Self::push(node, now, out);
                }
                for (name, child) in &node.children {
                    if !(root && name.starts_with('$')) {
                        Self::push_all(child, now, out);
                    }
                }
            }
            "+" => {
                for (name, child) in &node.children {
                    if !(root && name.starts_with('$')) {
                        Self::walk(child, rest, false, now, out);
                    }
                }
            }
            level => {
                if let Some(child) = node.children.get(level) {
                    Self::walk(child, rest, false, now, out);
                }
            }
        }
    }

    /// Drops messages whose Message Expiry Interval has passed.
    pub fn purge_expired(&mut self, now: Instant) {
        let mut removed = 0;
        Self::purge(&mut self.root, now, &mut removed);
        self.len -= removed;
    }

    fn purge(node: &mut Node, now: Instant, removed: &mut usize) {
        if let Some(r) = &node.message
            && expire(&r.publish, r.stored_at, now).is_none()
        {
            node.message = None;
            *removed += 1;
        }
        node.children.retain(|_, child| {
            Self::purge(child, now, removed);
            child.message.is_some() || !child.children.is_empty()
        });
    }
}

/// `publish` with its Message Expiry Interval reduced by the time since
/// `since`, or `None` if it expired ([MQTT-3.3.2-5], [MQTT-3.3.2-6]).
pub fn expire(publish: &Publish, since: Instant, now: Instant) -> Option<Publish> {
    let left = remaining(publish, since, now)?;
    let mut p = publish.clone();
    if left.is_some() {
        p.properties_mut().message_expiry_interval = left;
    }
    Some(p)
}

/// [`expire`] for a message the caller gives up: no copy (a copy costs a
/// reference count taken and given back, per delivery).
pub(crate) fn expire_owned(mut publish: Publish, since: Instant, now: Instant) -> Option<Publish> {
    let left = remaining(&publish, since, now)?;
    if left.is_some() {
        publish.properties_mut().message_expiry_interval = left;
    }
    Some(publish)
}

/// The Message Expiry Interval left after waiting from `since` to `now`:
/// `Some(None)` when it stays as it is (none, or no time passed), `None`
/// once expired.
fn remaining(publish: &Publish, since: Instant, now: Instant) -> Option<Option<u32>> {
    let Some(interval) = publish.properties().message_expiry_interval else {
        return Some(None);
    };
    let waited = now.saturating_duration_since(since).as_secs();
    let left = u64::from(interval).checked_sub(waited).filter(|&l| l > 0)?;
    Some((waited > 0).then_some(left as u32))
}
