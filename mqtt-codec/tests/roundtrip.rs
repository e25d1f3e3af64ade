//! Property tests: every valid packet of every version survives
//! encode -> decode unchanged, whatever way its bytes arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failed test

use mqtt_codec::{Bytes, BytesMut, Decoder, Encode, Packet, ProtocolVersion, Publish};
use mqtt_test_support::strategies;
use proptest::prelude::*;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fn decoder(v: ProtocolVersion) -> Decoder {
    let mut d = Decoder::new().with_max_packet_size(mqtt_codec::PROTOCOL_MAX_PACKET_SIZE);
    d.set_version(v);
    d
}

fn encode(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    let n = p.encode(v, &mut buf).expect("valid packet encodes");
    assert_eq!(n, buf.len(), "encode returns the bytes written");
    assert_eq!(p.encoded_len(v), buf.len(), "encoded_len is exact");
    buf
}

fn roundtrip(p: Packet, v: ProtocolVersion) -> Result<(), TestCaseError> {
    let mut buf = encode(&p, v);
    let decoded = decoder(v).decode(&mut buf).expect("encoded packet decodes");
    prop_assert_eq!(decoded, Some(p));
    prop_assert!(buf.is_empty(), "decode consumes exactly one packet");
    Ok(())
}

fn packet_in_any_version() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    strategies::version().prop_flat_map(|v| strategies::packet(v).prop_map(move |p| (v, p)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn roundtrip_v3_1(p in strategies::packet(ProtocolVersion::V3_1)) {
        roundtrip(p, ProtocolVersion::V3_1)?;
    }

    #[test]
    fn roundtrip_v3_1_1(p in strategies::packet(ProtocolVersion::V3_1_1)) {
        roundtrip(p, ProtocolVersion::V3_1_1)?;
    }

    #[test]
    fn roundtrip_v5(p in strategies::packet(ProtocolVersion::V5)) {
        roundtrip(p, ProtocolVersion::V5)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Split at every byte boundary: `Ok(None)` before, the same packet after.
    #[test]
    fn split_at_every_boundary((v, p) in packet_in_any_version()) {
        let wire = encode(&p, v).freeze();
        for cut in 0..wire.len() {
            let mut d = decoder(v);
            let mut buf = BytesMut::from(&wire[..cut]);
            prop_assert_eq!(d.decode(&mut buf).expect("prefix is not an error"), None);
            prop_assert_eq!(buf.len(), cut, "an incomplete packet consumes nothing");
            buf.extend_from_slice(&wire[cut..]);
            prop_assert_eq!(d.decode(&mut buf).expect("whole packet decodes"), Some(p.clone()));
            prop_assert!(buf.is_empty());
        }
    }

    /// A stream of packets arriving in arbitrary chunks decodes in order.
    #[test]
    fn stream_in_arbitrary_chunks(
        v in strategies::version(),
        seed in any::<u64>(),
        chunks in proptest::collection::vec(1usize..64, 1..64),
    ) {
        let packets: Vec<Packet> = {
            let mut runner = proptest::test_runner::TestRunner::new_with_rng(
                ProptestConfig::default(),
                proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &{
                    let mut s = [0u8; 32];
                    s[..8].copy_from_slice(&seed.to_le_bytes());
                    s
                }),
            );
            let strategy = strategies::packet(v);
            (0..8).map(|_| strategy.new_tree(&mut runner).expect("tree").current()).collect()
        };
        let mut wire = BytesMut::new();
        for p in &packets {
            p.encode(v, &mut wire).expect("encodes");
        }
        let wire = wire.freeze();
        let mut d = decoder(v);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut chunk = chunks.iter().cycle();
        while pos < wire.len() {
            let n = (*chunk.next().expect("cycle")).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            while let Some(p) = d.decode(&mut buf).expect("valid stream") {
                out.push(p);
            }
        }
        prop_assert_eq!(out, packets);
    }

    /// The vectored form (header, then the shared payload) is byte-for-byte the packet.
    #[test]
    fn publish_header_plus_payload_is_the_packet(
        (v, p) in strategies::version().prop_flat_map(|v| strategies::publish(v).prop_map(move |p| (v, p)))
    ) {
        let mut whole = BytesMut::new();
        p.encode(v, &mut whole).expect("encodes");
        let mut header = BytesMut::new();
        let total = p.encode_header(v, &mut header).expect("encodes");
        prop_assert_eq!(total, whole.len());
        header.extend_from_slice(p.payload());
        prop_assert_eq!(header, whole);
    }
}

/// The decoded payload and topic point into the received buffer: no copy.
#[test]
fn decoded_publish_shares_the_input_buffer() {
    for v in VERSIONS {
        let topic = mqtt_codec::TopicName::from_static("a/b").expect("valid");
        let p = Publish::new(topic, Bytes::from(vec![7u8; 65536]));
        let mut buf = BytesMut::new();
        p.encode(v, &mut buf).expect("encodes");
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let Some(Packet::Publish(d)) = decoder(v).decode(&mut buf).expect("decodes") else {
            panic!("expected PUBLISH")
        };
        assert!(
            range.contains(&(d.payload().as_ptr() as usize)),
            "payload is a slice of the input"
        );
        assert!(
            range.contains(&(d.topic().as_ptr() as usize)),
            "topic is a slice of the input"
        );
    }
}

/// Decodes `data` as a stream; nothing may panic, and whatever decodes must
/// re-encode to bytes that decode to the same packet (the fuzz targets'
/// property, run here on every test run).
fn decode_anything(mut d: Decoder, data: &[u8]) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(p)) = d.decode(&mut buf) {
        let v = d.version().expect("known once a packet decoded");
        let mut wire = encode(&p, v);
        prop_assert_eq!(
            decoder(v).decode(&mut wire).expect("re-encoded decodes"),
            Some(p)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(v in strategies::version(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut d = Decoder::new().with_max_packet_size(4096);
        d.set_version(v);
        decode_anything(d, &data)?;
        decode_anything(Decoder::server().with_max_packet_size(4096), &data)?;
    }

    /// Valid packets with a few bytes changed: close to valid, so they reach
    /// deep into each decoder.
    #[test]
    fn mutated_packets_never_panic(
        (v, p) in packet_in_any_version(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut wire = encode(&p, v).to_vec();
        for (i, b) in edits {
            let at = i.index(wire.len());
            wire[at] = b;
        }
        decode_anything(decoder(v), &wire)?;
        let mut client = Decoder::client(v);
        client.set_max_packet_size(4096);
        decode_anything(client, &wire)?;
    }
}
