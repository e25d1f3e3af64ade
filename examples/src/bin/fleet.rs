//! `fleet`: a simulated fleet of sensors, each its own MQTT connection,
//! for the live dashboard (examples/web/dashboard).
//!
//! Device `dev-NNN` publishes, retained:
//! - `fleet/dev-NNN/status`: `online` when connected; its will sets
//!   `offline` when the connection is lost without a DISCONNECT (a killed
//!   process, a pulled cable), and a clean stop publishes `offline` itself;
//! - `fleet/dev-NNN/telemetry`: a JSON reading every interval, at QoS 0, 1
//!   or 2 by device number (`{"temperature":21.4,"humidity":40.2,
//!   "battery":97,"qos":1,"seq":12,"ts":1764553200123}`).
//!
//! ```text
//! fleet --url mqtt://127.0.0.1:1883 --devices 200 --interval-ms 1000
//! ```

use bytes::Bytes;
use clap::Parser;
use mqtt_client::{ClientBuilder, Message, ProtocolVersion, TopicName, Will};
use mqtt_examples::qos;
use std::{
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Simulate a fleet of sensors publishing readings and online/offline status.
#[derive(Parser, Debug)]
#[command(name = "fleet", version)]
struct Cli {
    /// Broker URL: mqtt://, mqtts://, ws:// or wss://.
    #[arg(short = 'L', long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    /// Number of devices (one connection each).
    #[arg(short = 'n', long, default_value_t = 200)]
    devices: u32,
    /// Milliseconds between a device's readings.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Topic prefix.
    #[arg(long, default_value = "fleet")]
    prefix: String,
}

/// A small deterministic generator (xorshift), enough for sensor noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 10_000) as f64 / 10_000.0
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn device(
    cli: &Cli,
    n: u32,
) -> Result<(mqtt_client::Client, tokio::task::JoinHandle<()>), mqtt_client::Error> {
    let id = format!("dev-{n:03}");
    let status = format!("{}/{id}/status", cli.prefix);
    let telemetry = format!("{}/{id}/telemetry", cli.prefix);
    let status_topic = TopicName::try_from(status.as_str())
        .map_err(|e| mqtt_client::Error::InvalidArgument(format!("{status}: {e}")))?;
    let mut will = Will::new(status_topic, Bytes::from_static(b"offline"));
    will.qos = qos(1);
    will.retain = true;
    let (client, mut messages) = ClientBuilder::new(&cli.url)?
        .version(ProtocolVersion::V5)
        .client_id(&format!("{}-{id}", cli.prefix))
        .keep_alive(Duration::from_secs(10))
        .will(will)
        .connect()
        .await?;
    client
        .publish(Message::new(&status, "online")?.qos(qos(1)).retain(true))
        .await?;
    let level = qos((n % 3) as u8);
    let interval = Duration::from_millis(cli.interval_ms.max(10));
    let publisher = client.clone();
    let task = tokio::spawn(async move {
        let mut noise = Noise(0x9E37_79B9_7F4A_7C15 ^ u64::from(n + 1));
        let base = 18.0 + f64::from(n % 10);
        let mut battery = 100.0 - f64::from(n % 20);
        // Spread devices over the interval so readings do not come in bursts.
        tokio::time::sleep(interval.mul_f64(noise.next())).await;
        let mut tick = tokio::time::interval(interval);
        for seq in 0u64.. {
            tick.tick().await;
            battery = (battery - 0.01).max(0.0);
            let reading = format!(
                "{{\"temperature\":{:.1},\"humidity\":{:.1},\"battery\":{:.0},\"qos\":{},\"seq\":{seq},\"ts\":{}}}",
                base + 3.0 * noise.next(),
                35.0 + 20.0 * noise.next(),
                battery,
                level as u8,
                now_ms()
            );
            let Ok(m) = Message::new(&telemetry, reading) else {
                return;
            };
            // Queue it; the client resends QoS 1/2 after a reconnect.
            if publisher.enqueue(m.qos(level).retain(true)).await.is_err() {
                return;
            }
        }
    });
    // The dashboard does not send to devices; drop what arrives.
    tokio::spawn(async move { while messages.recv().await.is_some() {} });
    Ok((client, task))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut devices = Vec::new();
    for n in 1..=cli.devices {
        devices.push(device(&cli, n).await?);
    }
    println!(
        "fleet: {} devices online at {}, one reading each per {} ms",
        cli.devices, cli.url, cli.interval_ms
    );
    let _ = tokio::signal::ctrl_c().await;
    // A clean stop: say offline, then disconnect (no will).
    for (client, task) in &devices {
        task.abort();
        let id = client.client_id();
        let device = id.strip_prefix(&format!("{}-", cli.prefix)).unwrap_or(&id);
        let status = format!("{}/{device}/status", cli.prefix);
        let _ = client
            .publish(Message::new(&status, "offline")?.qos(qos(1)).retain(true))
            .await;
        let _ = client.disconnect().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet: {e}");
            ExitCode::FAILURE
        }
    }
}
