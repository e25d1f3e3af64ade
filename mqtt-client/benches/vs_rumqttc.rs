//! Client throughput against rumqttc.
fn main() {}
