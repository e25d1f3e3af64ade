//! The broker's parsers of outside input other than MQTT packets: ACL and
//! password files, SCRAM-SHA-256 messages, stored records, HTTP paths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mqtt_broker_core::fuzz_parsers(data);
});
