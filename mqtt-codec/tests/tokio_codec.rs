//! The `tokio_util::codec` implementation (feature `tokio`).
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_codec::{
    BytesMut, CodecError, Connect, DecodeError, Decoder, EncodeError, MqttCodec, Packet,
    PacketType, ProtocolVersion, Publish, TopicName,
};
use tokio_util::codec::{Decoder as _, Encoder as _};

fn connect(v: ProtocolVersion) -> Packet {
    Connect::new(v, "client".try_into().unwrap()).into()
}

fn publish() -> Packet {
    Publish::new(TopicName::from_static("a/b").unwrap(), &b"hi"[..]).into()
}

#[test]
fn client_and_server_codecs_agree_on_the_version_from_connect() {
    let mut client = MqttCodec::new(Decoder::client(ProtocolVersion::V5));
    let mut server = MqttCodec::new(Decoder::server());
    let mut wire = BytesMut::new();
    client
        .encode(connect(ProtocolVersion::V3_1_1), &mut wire)
        .unwrap();
    // Encoding the CONNECT switched the client codec to 3.1.1.
    assert_eq!(client.version(), Some(ProtocolVersion::V3_1_1));
    client.encode(&publish(), &mut wire).unwrap();

    // The server reads both packets in one buffer, learning the version.
    assert!(matches!(
        server.decode(&mut wire).unwrap(),
        Some(Packet::Connect(_))
    ));
    assert_eq!(server.version(), Some(ProtocolVersion::V3_1_1));
    assert_eq!(server.decode(&mut wire).unwrap(), Some(publish()));
    assert_eq!(server.decode(&mut wire).unwrap(), None);
}

#[test]
fn encoding_before_the_version_is_known_is_an_error() {
    let mut codec = MqttCodec::new(Decoder::server());
    let err = codec.encode(publish(), &mut BytesMut::new()).unwrap_err();
    assert!(matches!(
        err,
        CodecError::Encode(EncodeError::VersionUnknown(PacketType::Publish))
    ));
}

#[test]
fn decode_errors_surface_with_their_reason() {
    let mut codec = MqttCodec::new(Decoder::server().with_max_packet_size(16));
    let mut wire = BytesMut::from(&[0x30u8, 0x7F][..]);
    let err = codec.decode(&mut wire).unwrap_err();
    let CodecError::Decode(e @ DecodeError::PacketTooLarge { .. }) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        e.disconnect_reason(),
        mqtt_codec::DisconnectReason::PacketTooLarge
    );
    // The decoder's limit can be changed through the codec.
    codec.decoder_mut().set_max_packet_size(1024);
    assert_eq!(codec.decoder_mut().max_packet_size(), 1024);
}
