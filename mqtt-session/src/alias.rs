//! Topic aliases (MQTT 5 section 3.3.2.3.4), one map per direction.

use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};
use core::num::NonZeroU16;
use mqtt_codec::{DisconnectReason, Publish, TopicName};

/// A received Topic Alias that breaks the rules; each maps to the
/// DISCONNECT reason the receiver closes the connection with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// An alias above the Topic Alias Maximum this side announced.
    #[error("topic alias {alias} exceeds the maximum {max}")]
    TooLarge {
        /// The alias received.
        alias: u16,
        /// The maximum announced.
        max: u16,
    },
    /// An empty topic with an alias that has no mapping yet.
    #[error("topic alias {0} used before it was set")]
    Unknown(u16),
}

impl AliasError {
    /// The DISCONNECT reason code: 0x94 Topic Alias invalid, or 0x82
    /// Protocol Error for an alias used before it was set.
    pub fn disconnect_reason(&self) -> DisconnectReason {
        match self {
            AliasError::TooLarge { .. } => DisconnectReason::TopicAliasInvalid,
            AliasError::Unknown(_) => DisconnectReason::ProtocolError,
        }
    }
}

/// The aliases the peer set on PUBLISHes it sent this side.
///
/// Mappings last for one network connection: make a new map per connection.
#[derive(Clone, Debug, Default)]
pub struct InboundAliases {
    /// Mappings, grown as aliases are first used (most connections use
    /// none: no memory is taken for them, and a pointer's worth here).
    #[allow(clippy::box_collection)] // (a pointer when empty, not a Vec's three words)
    topics: Option<Box<Vec<Option<TopicName>>>>,
    max: u16,
}

impl InboundAliases {
    /// A map accepting aliases 1 to `max` (the Topic Alias Maximum this side
    /// announced; 0 accepts none).
    pub fn new(max: u16) -> InboundAliases {
        InboundAliases { topics: None, max }
    }

    /// The Topic Alias Maximum.
    pub fn max(&self) -> u16 {
        self.max
    }

    /// Applies the alias of a received PUBLISH: a topic with an alias sets or
    /// replaces the mapping, an empty topic takes the mapped one. The alias
    /// property is removed, so the PUBLISH carries its full topic onward.
    pub fn resolve(&mut self, publish: &mut Publish) -> Result<(), AliasError> {
        let Some(alias) = publish.properties().topic_alias else {
            return Ok(());
        };
        let index = usize::from(alias.get()) - 1;
        let max = self.max();
        if alias.get() > max {
            return Err(AliasError::TooLarge {
                alias: alias.get(),
                max,
            });
        }
        let topics = self.topics.get_or_insert_default();
        if topics.len() <= index {
            topics.resize(index + 1, None);
        }
        let slot = topics.get_mut(index).ok_or(AliasError::TooLarge {
            alias: alias.get(),
            max,
        })?;
        if publish.topic().is_empty() {
            let topic = slot.as_ref().ok_or(AliasError::Unknown(alias.get()))?;
            publish.set_topic(topic.clone());
        } else {
            // A copy, so the mapping does not keep the whole received frame alive.
            *slot = TopicName::try_from(publish.topic()).ok();
        }
        publish.properties_mut().topic_alias = None;
        if publish.properties().is_empty() {
            publish.take_properties();
        }
        Ok(())
    }
}

/// The aliases this side sets on PUBLISHes it sends, within the peer's
/// Topic Alias Maximum.
///
/// Topics get aliases in the order they are first sent until the maximum is
/// reached; later topics go out in full. The first PUBLISH to a topic carries
/// the topic and its new alias, later ones an empty topic and the alias.
#[derive(Clone, Debug, Default)]
pub struct OutboundAliases {
    max: u16,
    /// (Boxed once the first alias is assigned: most connections have none.)
    #[allow(clippy::box_collection)] // (a pointer when empty)
    assigned: Option<Box<BTreeMap<TopicName, NonZeroU16>>>,
}

impl OutboundAliases {
    /// A map for a peer whose Topic Alias Maximum is `max` (0: no aliases).
    pub fn new(max: u16) -> OutboundAliases {
        OutboundAliases {
            max,
            assigned: None,
        }
    }

    /// Rewrites an outgoing PUBLISH to use an alias where one applies. A
    /// PUBLISH that already carries an alias is left alone.
    pub fn apply(&mut self, publish: &mut Publish) {
        if self.max == 0 || publish.properties().topic_alias.is_some() || publish.topic().is_empty()
        {
            return;
        }
        let topic = publish.topic_name();
        let assigned = self.assigned.get_or_insert_default();
        if let Some(&alias) = assigned.get(&topic) {
            publish.set_topic(TopicName::default());
            publish.properties_mut().topic_alias = Some(alias);
            return;
        }
        let next = assigned.len() + 1;
        if let Some(alias) = NonZeroU16::new(next as u16).filter(|_| next <= usize::from(self.max))
        {
            assigned.insert(topic, alias);
            publish.properties_mut().topic_alias = Some(alias);
        }
    }
}
