//! Arbitrary bytes as what a client sends a server from the first byte on:
//! the version is learned from a CONNECT (3.1, 3.1.1 or 5.0).
#![no_main]

#[path = "check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;
use mqtt_codec::Decoder;

fuzz_target!(|data: &[u8]| {
    check::decode_stream(Decoder::server().with_max_packet_size(check::MAX_PACKET), data);
});
