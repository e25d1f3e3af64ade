//! Arbitrary bytes as a stream of packets on an established V3_1_1 connection.
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{Decoder, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new().with_max_packet_size(check::MAX_PACKET);
    decoder.set_version(ProtocolVersion::V3_1_1);
    check::decode_stream(decoder, data);
});
