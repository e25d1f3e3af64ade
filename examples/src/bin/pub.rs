//! `pub`: publishes messages, as mosquitto_pub does.
//!
//! ```text
//! pub -t sensors/1 -m 21.5 -q 1
//! pub -L ws://127.0.0.1:8080/mqtt -t chat/room -m hello -V mqttv5
//! tail -f app.log | pub -t logs/app -l -q 1
//! ```

use clap::Parser;
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use mqtt_client::{Message, PayloadFormat};
use mqtt_examples::{Connection, qos};
use std::{process::ExitCode, time::Duration};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

/// Publish MQTT messages (MQTT 3.1.1 or 5.0 over TCP, TLS, WebSocket or WSS).
#[derive(Parser, Debug)]
#[command(name = "pub", disable_help_flag = true, disable_version_flag = true)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    topic: String,
    /// QoS: 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    retain: bool,
    /// The message.
    #[arg(short = 'm', long, group = "source")]
    message: Option<String>,
    /// A zero-length message.
    #[arg(short = 'n', long = "null-message", group = "source")]
    null: bool,
    /// Send all of standard input as one message.
    #[arg(short = 's', long = "stdin-file", group = "source")]
    stdin_file: bool,
    /// Send each line of standard input as a message.
    #[arg(short = 'l', long = "stdin-line", group = "source")]
    stdin_line: bool,
    /// Send the message this many times.
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Seconds between repeats.
    #[arg(long = "repeat-delay", default_value_t = 0.0)]
    repeat_delay: f64,
    /// MQTT 5 Content Type.
    #[arg(long = "content-type")]
    content_type: Option<String>,
    /// MQTT 5 Response Topic.
    #[arg(long = "response-topic")]
    response_topic: Option<String>,
    /// MQTT 5 Correlation Data.
    #[arg(long = "correlation-data")]
    correlation_data: Option<String>,
    /// MQTT 5 Message Expiry Interval in seconds.
    #[arg(long = "message-expiry")]
    message_expiry: Option<u32>,
    /// MQTT 5 User Property NAME=VALUE (repeatable, order kept).
    #[arg(long = "user-property", value_parser = name_value)]
    user_property: Vec<(String, String)>,
    /// Mark the payload as UTF-8 text (MQTT 5 Payload Format Indicator).
    #[arg(long)]
    utf8: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

impl Cli {
    fn message(&self, payload: impl Into<bytes::Bytes>) -> Result<Message, mqtt_client::Error> {
        let mut m = Message::new(&self.topic, payload)?
            .qos(qos(self.qos))
            .retain(self.retain);
        if let Some(ct) = &self.content_type {
            m = m.content_type(ct)?;
        }
        if let Some(rt) = &self.response_topic {
            m = m.response_topic(rt)?;
        }
        if let Some(cd) = &self.correlation_data {
            m = m.correlation_data(cd.clone().into_bytes());
        }
        if let Some(e) = self.message_expiry {
            m = m.message_expiry(e);
        }
        for (n, v) in &self.user_property {
            m = m.user_property(n, v)?;
        }
        if self.utf8 {
            m = m.payload_format(PayloadFormat::Utf8);
        }
        Ok(m)
    }
}

async fn run(cli: Cli) -> Result<(), mqtt_client::Error> {
    let (client, _) = cli.connection.builder()?.connect().await?;
    // Completed deliveries are checked as we go, so the list stays short.
    let mut deliveries = FuturesUnordered::new();
    if cli.stdin_line {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            // Waits for room when the queue is full: stdin is read no faster
            // than the broker takes messages.
            deliveries.push(client.enqueue(cli.message(line)?).await?);
            while let Some(Some(done)) = deliveries.next().now_or_never() {
                done?;
            }
        }
    } else {
        let payload: Vec<u8> = if cli.stdin_file {
            let mut buf = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut buf)
                .await
                .map_err(|e| mqtt_client::Error::InvalidArgument(e.to_string()))?;
            buf
        } else if cli.null {
            Vec::new()
        } else if let Some(m) = &cli.message {
            m.clone().into_bytes()
        } else {
            return Err(mqtt_client::Error::InvalidArgument(
                "give a message: -m, -n, -s or -l".into(),
            ));
        };
        let payload = bytes::Bytes::from(payload);
        for i in 0..cli.repeat {
            if i > 0 && cli.repeat_delay > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(cli.repeat_delay)).await;
            }
            deliveries.push(client.enqueue(cli.message(payload.clone())?).await?);
            while let Some(Some(done)) = deliveries.next().now_or_never() {
                done?;
            }
        }
    }
    while let Some(done) = deliveries.next().await {
        done?;
    }
    client.disconnect().await
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pub: {e}");
            ExitCode::FAILURE
        }
    }
}
