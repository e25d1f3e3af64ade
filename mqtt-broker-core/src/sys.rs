//! `$SYS/broker/...` topics: the broker's counters published as retained
//! messages every [`BrokerConfig::sys_interval`](crate::BrokerConfig), as
//! mosquitto does (`$SYS/broker/clients/connected`, `.../messages/received`,
//! `.../uptime`, ...). Wildcards at the first level never match them
//! ([MQTT-4.7.2-1]): subscribe to `$SYS/#`.

use crate::{broker::Shared, metrics};
use mqtt_codec::{Publish, TopicName};
use std::{sync::Weak, time::Instant};

/// Publishes the counters now; `version` goes to `$SYS/broker/version`.
pub(crate) fn publish(shared: &Shared) {
    let now = Instant::now();
    let mut values: Vec<(String, String)> = metrics::read(shared)
        .into_iter()
        .map(|m| (format!("$SYS/broker/{}", m.sys), m.value.to_string()))
        .collect();
    values.push((
        "$SYS/broker/version".into(),
        concat!("mqtt-broker-core ", env!("CARGO_PKG_VERSION")).into(),
    ));
    let mut state = shared.lock();
    for (topic, value) in values {
        let Ok(topic) = TopicName::try_from(topic.as_str()) else {
            continue;
        };
        let mut p = Publish::new(topic, value.into_bytes());
        p.retain = true;
        // Kept for subscribers who come later, never stored on disk.
        state.retained.set(p.clone(), now);
        state.route(None, &p, now);
    }
}

/// Publishes every `interval` until the broker is gone or shut down.
pub(crate) async fn run(shared: Weak<Shared>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if *shared.shutdown.borrow() {
            return;
        }
        publish(&shared);
    }
}
