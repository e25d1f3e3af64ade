//! Request/response over MQTT 5 Response Topic and Correlation Data.

use crate::{Client, Error, Message, Messages};
use bytes::Bytes;
use mqtt_codec::{Publish, QoS, Subscription, SubscriptionOptions, TopicFilter};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::oneshot;

type Waiters = Arc<Mutex<HashMap<Bytes, oneshot::Sender<Publish>>>>;

/// Sends requests and matches their responses (MQTT 5).
///
/// It subscribes to one response topic; each request carries that topic as
/// its Response Topic and fresh Correlation Data, and the response with the
/// same Correlation Data completes it. A responder answers with
/// [`Message::reply_to`].
///
/// ```no_run
/// # async fn demo(client: mqtt_client::Client) -> Result<(), mqtt_client::Error> {
/// use mqtt_client::{Message, QoS};
/// use std::time::Duration;
/// let requester = client.requester("replies/my-client").await?;
/// let response = requester
///     .request(Message::new("service/time", "now?")?.qos(QoS::AtLeastOnce), Duration::from_secs(5))
///     .await?;
/// println!("{:?}", response.payload());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Requester {
    client: Client,
    topic: String,
    waiters: Waiters,
    next: Arc<AtomicU64>,
    _task: Arc<TaskGuard>,
}

#[derive(Debug)]
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    /// A [`Requester`] whose responses come to `response_topic` (a topic
    /// name, no wildcards; make it unique to this client, e.g. from the
    /// CONNACK's Response Information).
    pub async fn requester(&self, response_topic: &str) -> Result<Requester, Error> {
        let filter = TopicFilter::try_from(response_topic)?;
        // Validate as a topic name too: it goes out as the Response Topic.
        mqtt_codec::TopicName::try_from(response_topic)?;
        let mut options = SubscriptionOptions::qos(QoS::AtLeastOnce);
        options.no_local = self.version().is_v5();
        let (suback, messages) = self
            .subscribe_stream(vec![Subscription { filter, options }], Default::default())
            .await?;
        if let Some(r) = suback.reasons.first().filter(|r| r.granted_qos().is_none()) {
            return Err(Error::InvalidArgument(format!(
                "subscription to {response_topic:?} refused: {r:?}"
            )));
        }
        let waiters: Waiters = Default::default();
        let task = tokio::spawn(dispatch(messages, waiters.clone()));
        Ok(Requester {
            client: self.clone(),
            topic: response_topic.into(),
            waiters,
            next: Arc::new(AtomicU64::new(1)),
            _task: Arc::new(TaskGuard(task)),
        })
    }
}

async fn dispatch(mut messages: Messages, waiters: Waiters) {
    while let Some(p) = messages.recv().await {
        let Some(data) = p.properties().correlation_data.clone() else {
            continue;
        };
        let waiter = waiters.lock().ok().and_then(|mut w| w.remove(&data));
        if let Some(w) = waiter {
            let _ = w.send(p);
        }
    }
}

impl Requester {
    /// The response topic.
    pub fn response_topic(&self) -> &str {
        &self.topic
    }

    /// Publishes `message` as a request and waits up to `timeout` for its
    /// response.
    pub async fn request(&self, message: Message, timeout: Duration) -> Result<Publish, Error> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let data = Bytes::from(format!("{}:{id}", self.topic));
        let message = message
            .response_topic(&self.topic)?
            .correlation_data(data.clone());
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(data.clone(), tx);
        }
        let result = tokio::time::timeout(timeout, async {
            self.client.publish(message).await?;
            rx.await.map_err(|_| Error::Closed)
        })
        .await;
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(&data);
        }
        result.unwrap_or(Err(Error::Timeout))
    }
}
