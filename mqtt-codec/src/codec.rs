//! `tokio_util::codec` framing (feature `tokio`).

use crate::{DecodeError, Decoder, Encode, EncodeError, Packet, ProtocolVersion};
use bytes::BytesMut;

/// An error of [`MqttCodec`].
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent an invalid packet.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A `tokio_util` codec for `Framed` transports: decodes with a [`Decoder`]
/// and encodes in the connection's protocol version (set by the first
/// CONNECT sent or received).
#[derive(Clone, Debug, Default)]
pub struct MqttCodec {
    decoder: Decoder,
}

impl MqttCodec {
    /// A codec around `decoder`.
    pub fn new(decoder: Decoder) -> MqttCodec {
        MqttCodec { decoder }
    }

    /// The decoder, e.g. to change the maximum packet size.
    pub fn decoder_mut(&mut self) -> &mut Decoder {
        &mut self.decoder
    }

    /// The connection's protocol version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.decoder.version()
    }
}

impl tokio_util::codec::Decoder for MqttCodec {
    type Item = Packet;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<&Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        let version = match packet {
            Packet::Connect(c) => {
                self.decoder.set_version(c.version);
                c.version
            }
            _ => self
                .decoder
                .version()
                .ok_or(EncodeError::VersionUnknown(packet.packet_type()))?,
        };
        packet.encode(version, dst)?;
        Ok(())
    }
}

impl tokio_util::codec::Encoder<Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        tokio_util::codec::Encoder::<&Packet>::encode(self, &packet, dst)
    }
}
