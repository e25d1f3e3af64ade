//! Outgoing messages.

use crate::Error;
use bytes::Bytes;
use core::num::NonZeroU32;
use mqtt_codec::{
    MqttStr, PayloadFormat, Publish, PublishProperties, QoS, QosPid, TopicName, UserProperty,
};

/// A message to publish: topic, payload, QoS, RETAIN and MQTT 5 properties.
///
/// ```
/// use mqtt_client::{Message, QoS};
/// let m = Message::new("sensors/42/temperature", "21.5")?
///     .qos(QoS::AtLeastOnce)
///     .retain(true)
///     .content_type("text/plain")?
///     .message_expiry(600)
///     .user_property("unit", "celsius")?;
/// assert_eq!(m.as_publish().topic(), "sensors/42/temperature");
/// # Ok::<(), mqtt_client::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message(Publish);

impl Message {
    /// A QoS 0, non-retained message. The topic must be a valid topic name
    /// (not empty, no wildcards, no U+0000).
    pub fn new(topic: &str, payload: impl Into<Bytes>) -> Result<Message, Error> {
        let topic = TopicName::try_from(topic)
            .map_err(|e| Error::InvalidArgument(format!("topic {topic:?}: {e}")))?;
        Ok(Message(Publish::new(topic, payload)))
    }

    /// QoS (0 by default).
    pub fn qos(mut self, qos: QoS) -> Message {
        self.0.qos_pid = QosPid::new(qos, mqtt_codec::PacketId::MIN);
        self
    }

    /// The RETAIN flag.
    pub fn retain(mut self, retain: bool) -> Message {
        self.0.retain = retain;
        self
    }

    /// MQTT 5 Message Expiry Interval in seconds.
    pub fn message_expiry(mut self, seconds: u32) -> Message {
        self.0.properties_mut().message_expiry_interval = Some(seconds);
        self
    }

    /// MQTT 5 Payload Format Indicator: whether the payload is UTF-8 text.
    pub fn payload_format(mut self, format: PayloadFormat) -> Message {
        self.0.properties_mut().payload_format_indicator = Some(format);
        self
    }

    /// MQTT 5 Content Type.
    pub fn content_type(mut self, content_type: &str) -> Result<Message, Error> {
        self.0.properties_mut().content_type = Some(MqttStr::try_from(content_type)?);
        Ok(self)
    }

    /// MQTT 5 Response Topic.
    pub fn response_topic(mut self, topic: &str) -> Result<Message, Error> {
        self.0.properties_mut().response_topic = Some(TopicName::try_from(topic)?);
        Ok(self)
    }

    /// MQTT 5 Correlation Data.
    pub fn correlation_data(mut self, data: impl Into<Bytes>) -> Message {
        self.0.properties_mut().correlation_data = Some(data.into());
        self
    }

    /// Adds an MQTT 5 User Property (order and repeats are kept).
    pub fn user_property(mut self, name: &str, value: &str) -> Result<Message, Error> {
        self.0.properties_mut().user_properties.push(UserProperty {
            name: MqttStr::try_from(name)?,
            value: MqttStr::try_from(value)?,
        });
        Ok(self)
    }

    /// MQTT 5 Subscription Identifier: not sent by clients; present only so
    /// a received message can be republished as is. Cleared on send.
    #[doc(hidden)]
    pub fn subscription_identifier(mut self, id: NonZeroU32) -> Message {
        self.0.properties_mut().subscription_identifiers.push(id);
        self
    }

    /// Every MQTT 5 property at once.
    pub fn properties(mut self, properties: PublishProperties) -> Message {
        self.0.set_properties(properties);
        self
    }

    /// The packet this message becomes.
    pub fn as_publish(&self) -> &Publish {
        &self.0
    }

    /// The packet, to change anything else.
    pub fn into_publish(self) -> Publish {
        self.0
    }

    /// A reply to an MQTT 5 request: a message to the request's Response
    /// Topic carrying its Correlation Data, or `None` when the request named
    /// no Response Topic.
    pub fn reply_to(request: &Publish, payload: impl Into<Bytes>) -> Option<Message> {
        let p = request.properties();
        let topic = p.response_topic.clone()?;
        let mut reply = Publish::new(topic, payload);
        reply.properties_mut().correlation_data = p.correlation_data.clone();
        reply.qos_pid = QosPid::new(request.qos(), mqtt_codec::PacketId::MIN);
        Some(Message(reply))
    }
}

impl From<Publish> for Message {
    /// A message from a PUBLISH, e.g. one received, to send on. Client-only
    /// fields (packet identifier, DUP, Topic Alias, Subscription
    /// Identifiers) are reset.
    fn from(mut p: Publish) -> Message {
        p.dup = false;
        p.qos_pid = QosPid::new(p.qos(), mqtt_codec::PacketId::MIN);
        if p.properties().topic_alias.is_some()
            || !p.properties().subscription_identifiers.is_empty()
        {
            let props = p.properties_mut();
            props.topic_alias = None;
            props.subscription_identifiers.clear();
        }
        Message(p)
    }
}

impl From<Message> for Publish {
    fn from(m: Message) -> Publish {
        m.0
    }
}
