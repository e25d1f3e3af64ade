//! The building blocks on their own: the subscription tree and the retained
//! store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::{
    retained::RetainedStore,
    subscriptions::{Subscriber, SubscriptionTree},
};
use mqtt_codec::{Publish, QoS, SubscriptionOptions, TopicFilter, TopicName, topic_matches};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn sub(qos: QoS) -> Subscriber {
    Subscriber {
        options: SubscriptionOptions::qos(qos),
        identifier: None,
    }
}

fn f(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap()
}

fn keys(tree: &mut SubscriptionTree<u32>, topic: &str) -> Vec<u32> {
    let mut k: Vec<u32> = tree.matches(topic).into_iter().map(|m| m.key).collect();
    k.sort();
    k
}

#[test]
fn wildcards_match_as_the_spec_says() {
    let mut t = SubscriptionTree::new();
    for (i, filter) in [
        "a/b", "a/+", "a/#", "#", "+/b", "+", "a/b/c", "$SYS/#", "$SYS/+",
    ]
    .iter()
    .enumerate()
    {
        t.subscribe(&f(filter), i as u32, sub(QoS::AtMostOnce));
    }
    assert_eq!(keys(&mut t, "a/b"), vec![0, 1, 2, 3, 4]);
    // "a/#" matches its parent "a" too.
    assert_eq!(keys(&mut t, "a"), vec![2, 3, 5]);
    assert_eq!(keys(&mut t, "a/b/c"), vec![2, 3, 6]);
    // [MQTT-4.7.2-1]: leading wildcards do not match $ topics.
    assert_eq!(keys(&mut t, "$SYS/uptime"), vec![7, 8]);
    // [MQTT-4.7.3-4]: case-sensitive.
    assert_eq!(keys(&mut t, "A/b"), vec![3, 4]);
}

#[test]
fn unsubscribe_is_exact_and_prunes() {
    let mut t = SubscriptionTree::new();
    t.subscribe(&f("a/+"), 1, sub(QoS::AtLeastOnce));
    // [MQTT-3.10.4-1]: no wildcard expansion.
    assert!(!t.unsubscribe(&f("a/b"), &1));
    assert!(t.unsubscribe(&f("a/+"), &1));
    assert!(t.is_empty());
    assert!(keys(&mut t, "a/b").is_empty());
}

#[test]
fn resubscribing_replaces_and_reports_it_existed() {
    let mut t = SubscriptionTree::new();
    assert!(!t.subscribe(&f("a"), 1, sub(QoS::AtMostOnce)));
    // [MQTT-3.8.4-3]: same filter replaces the subscription.
    assert!(t.subscribe(&f("a"), 1, sub(QoS::ExactlyOnce)));
    assert_eq!(t.len(), 1);
    assert_eq!(t.matches("a")[0].subscriber.options.qos, QoS::ExactlyOnce);
}

#[test]
fn shared_groups_deliver_to_one_member_round_robin() {
    let mut t = SubscriptionTree::new();
    for k in 0..3 {
        t.subscribe(&f("$share/g/jobs/+"), k, sub(QoS::AtLeastOnce));
    }
    t.subscribe(&f("$share/h/jobs/#"), 9, sub(QoS::AtLeastOnce));
    let mut seen = Vec::new();
    for _ in 0..6 {
        let m = t.matches("jobs/x");
        // One member of each group.
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|m| m.shared));
        seen.extend(m.into_iter().map(|m| m.key).filter(|&k| k != 9));
    }
    seen.sort();
    assert_eq!(seen, vec![0, 0, 1, 1, 2, 2]);
}

proptest! {
    /// The trie agrees with the filter-by-filter definition of matching.
    #[test]
    fn trie_matches_like_a_scan(
        filters in proptest::collection::vec(mqtt_test_support::strategies::topic_filter(), 1..30),
        topics in proptest::collection::vec(mqtt_test_support::strategies::topic_name(), 1..10),
    ) {
        let mut t = SubscriptionTree::new();
        let filters: Vec<TopicFilter> = filters.into_iter().filter(|f| !f.is_shared()).collect();
        for (i, filter) in filters.iter().enumerate() {
            t.subscribe(filter, i as u32, sub(QoS::AtMostOnce));
        }
        for topic in &topics {
            let topic = topic.as_str();
            if topic.is_empty() { continue; }
            let expected: Vec<u32> = filters.iter().enumerate()
                .filter(|(_, f)| topic_matches(f.as_str(), topic))
                .map(|(i, _)| i as u32)
                .collect();
            prop_assert_eq!(keys(&mut t, topic), expected);
        }
        // Removing filters (wildcard levels among them) keeps it in step.
        for (i, filter) in filters.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            t.unsubscribe(filter, &(i as u32));
        }
        for topic in &topics {
            let topic = topic.as_str();
            if topic.is_empty() { continue; }
            let expected: Vec<u32> = filters.iter().enumerate()
                .filter(|(i, f)| i % 3 != 0 && topic_matches(f.as_str(), topic))
                .map(|(i, _)| i as u32)
                .collect();
            prop_assert_eq!(keys(&mut t, topic), expected);
        }
    }

    /// `collect_matches` counts the filters that matched; with sessions
    /// holding several filters, a count of at most one means no session
    /// appears twice (what lets routing skip merging).
    #[test]
    fn one_matching_filter_means_distinct_sessions(
        filters in proptest::collection::vec(mqtt_test_support::strategies::topic_filter(), 1..30),
        topics in proptest::collection::vec(mqtt_test_support::strategies::topic_name(), 1..10),
        sessions in 1u32..5,
    ) {
        let mut t = SubscriptionTree::new();
        let filters: Vec<TopicFilter> = filters.into_iter().filter(|f| !f.is_shared()).collect();
        for (i, filter) in filters.iter().enumerate() {
            t.subscribe(filter, i as u32 % sessions, sub(QoS::AtMostOnce));
        }
        for topic in &topics {
            let topic = topic.as_str();
            if topic.is_empty() { continue; }
            let mut distinct: Vec<&TopicFilter> = filters.iter()
                .filter(|f| topic_matches(f.as_str(), topic))
                .collect();
            distinct.sort_by_key(|f| f.as_str());
            distinct.dedup();
            let mut got = Vec::new();
            let count = t.collect_matches(topic, &mut got);
            prop_assert_eq!(count, distinct.len());
            if count <= 1 {
                let mut k: Vec<u32> = got.iter().map(|m| m.key).collect();
                let n = k.len();
                k.sort();
                k.dedup();
                prop_assert_eq!(k.len(), n);
            }
        }
    }
}

fn publish(topic: &str, payload: &'static [u8]) -> Publish {
    let mut p = Publish::new(TopicName::try_from(topic).unwrap(), payload);
    p.retain = true;
    p
}

#[test]
fn retained_store_replaces_deletes_and_looks_up_by_wildcard() {
    let now = Instant::now();
    let mut s = RetainedStore::default();
    s.set(publish("a/b", b"1"), now);
    // [MQTT-3.3.1-5]: replaced.
    s.set(publish("a/b", b"2"), now);
    s.set(publish("a/c/d", b"3"), now);
    s.set(publish("$SYS/x", b"4"), now);
    assert_eq!(s.len(), 3);
    let got = |s: &RetainedStore, filter: &str| {
        let mut v: Vec<Vec<u8>> = s
            .matching(&f(filter), now)
            .iter()
            .map(|p| p.payload().to_vec())
            .collect();
        v.sort();
        v
    };
    assert_eq!(got(&s, "a/+"), vec![b"2".to_vec()]);
    assert_eq!(got(&s, "a/#"), vec![b"2".to_vec(), b"3".to_vec()]);
    // [MQTT-4.7.2-1]
    assert_eq!(got(&s, "#"), vec![b"2".to_vec(), b"3".to_vec()]);
    assert_eq!(got(&s, "$SYS/#"), vec![b"4".to_vec()]);
    // [MQTT-3.3.1-6], [MQTT-3.3.1-7]: an empty payload deletes and is not stored.
    s.set(publish("a/b", b""), now);
    assert_eq!(got(&s, "a/#"), vec![b"3".to_vec()]);
    assert_eq!(s.len(), 2);
}

#[test]
fn retained_messages_expire() {
    let now = Instant::now();
    let mut s = RetainedStore::default();
    let mut p = publish("t", b"x");
    p.properties_mut().message_expiry_interval = Some(10);
    s.set(p, now);
    // [MQTT-3.3.2-6]: what is left of the interval.
    let later = s.matching(&f("t"), now + Duration::from_secs(4));
    assert_eq!(later[0].properties().message_expiry_interval, Some(6));
    // [MQTT-3.3.2-5]: gone once expired.
    assert!(
        s.matching(&f("t"), now + Duration::from_secs(11))
            .is_empty()
    );
    s.purge_expired(now + Duration::from_secs(11));
    assert!(s.is_empty());
}
