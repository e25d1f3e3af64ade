//! Matching a topic against 1 million subscriptions: the cost must not grow
//! with the number of unrelated subscriptions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use criterion::{Criterion, criterion_group, criterion_main};
use mqtt_broker_core::subscriptions::{Subscriber, SubscriptionTree};
use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter};
use std::hint::black_box;

fn tree(n: usize) -> SubscriptionTree<u32> {
    let mut t = SubscriptionTree::new();
    let sub = Subscriber {
        options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        identifier: None,
    };
    for i in 0..n {
        // Devices under sites, a few wildcard filters among them.
        let f = match i % 10 {
            0 => format!("site/{}/+/temperature", i / 1000),
            1 => format!("site/{}/device/{i}/#", i / 1000),
            _ => format!("site/{}/device/{i}/temperature", i / 1000),
        };
        t.subscribe(&TopicFilter::try_from(f.as_str()).unwrap(), i as u32, sub);
    }
    t
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    for n in [1_000usize, 1_000_000] {
        let mut t = tree(n);
        g.bench_function(format!("{n} subscriptions"), |b| {
            b.iter(|| black_box(t.matches(black_box("site/0/device/12/temperature"))).len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
