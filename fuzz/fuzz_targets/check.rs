//! The property every decode target checks.

use mqtt_codec::{BytesMut, Decoder, Encode, PROTOCOL_MAX_PACKET_SIZE};

/// Largest packet the fuzzed decoder accepts: bounds what it may buffer.
pub const MAX_PACKET: u32 = 64 * 1024;

/// Decodes `data` as a stream with `decoder` until it needs more bytes or
/// fails. Nothing may panic, and every decoded packet must re-encode to bytes
/// that decode to the same packet.
pub fn decode_stream(mut decoder: Decoder, data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        let version = decoder.version().expect("a decoded packet implies a known version");
        let mut wire = BytesMut::new();
        let n = packet.encode(version, &mut wire).expect("a decoded packet re-encodes");
        assert_eq!(n, wire.len());
        assert_eq!(packet.encoded_len(version), n);
        let mut again = Decoder::new().with_max_packet_size(PROTOCOL_MAX_PACKET_SIZE);
        again.set_version(version);
        let decoded = again.decode(&mut wire).expect("re-encoded packet decodes");
        assert_eq!(decoded.as_ref(), Some(&packet));
        assert!(wire.is_empty());
    }
}
