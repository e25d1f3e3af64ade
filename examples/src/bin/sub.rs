//! `sub`: subscribes and prints messages, as mosquitto_sub does.
//!
//! ```text
//! sub -t 'sensors/#' -v
//! sub -L ws://127.0.0.1:8080/mqtt -t 'chat/#' -V mqttv5 -C 10
//! ```

use clap::Parser;
use mqtt_client::{Subscription, SubscriptionOptions, TopicFilter};
use mqtt_examples::{Connection, qos};
use std::{io::Write, process::ExitCode, time::Duration};

/// Subscribe to MQTT topics and print the messages (MQTT 3.1.1 or 5.0 over
/// TCP, TLS, WebSocket or WSS).
#[derive(Parser, Debug)]
#[command(name = "sub", disable_help_flag = true, disable_version_flag = true)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic", required = true)]
    topics: Vec<String>,
    /// QoS: 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long)]
    count: Option<u64>,
    /// Exit after this many seconds without reaching the count.
    #[arg(short = 'W', long)]
    timeout: Option<u64>,
    /// Keep the session when disconnected (Clean Session / Clean Start 0);
    /// needs an id (-i).
    #[arg(short = 'c', long = "disable-clean-session", requires = "id")]
    keep_session: bool,
    /// MQTT 5 Session Expiry Interval in seconds.
    #[arg(short = 'x', long = "session-expiry")]
    session_expiry: Option<u64>,
    /// Do not print a newline after each payload.
    #[arg(short = 'N')]
    no_newline: bool,
    /// MQTT 5 No Local: not our own messages.
    #[arg(long = "no-local")]
    no_local: bool,
    /// Skip messages with the RETAIN flag (stale retained ones).
    #[arg(short = 'R', long = "no-retained")]
    no_retained: bool,
    /// Print MQTT 5 properties of each message.
    #[arg(long)]
    properties: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut b = cli.connection.builder()?.clean_start(!cli.keep_session);
    if let Some(x) = cli.session_expiry {
        b = b.session_expiry(Duration::from_secs(x));
    }
    let (client, mut messages) = b.connect().await?;
    let mut events = client.events();
    let mut subscriptions = Vec::new();
    for t in &cli.topics {
        let mut options = SubscriptionOptions::qos(qos(cli.qos));
        options.no_local = cli.no_local;
        subscriptions.push(Subscription {
            filter: TopicFilter::try_from(t.as_str())?,
            options,
        });
    }
    let suback = client
        .subscribe_with(subscriptions, Default::default())
        .await?;
    for (t, r) in cli.topics.iter().zip(&suback.reasons) {
        if r.granted_qos().is_none() {
            eprintln!("sub: subscription to {t} refused: {r:?}");
        }
    }
    let deadline = cli
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut received = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        let next = messages.recv();
        let m = match deadline {
            Some(d) => match tokio::time::timeout_at(d, next).await {
                Ok(m) => m,
                Err(_) => {
                    eprintln!("Timed out");
                    break;
                }
            },
            None => tokio::select! {
                m = next => m,
                _ = tokio::signal::ctrl_c() => break,
            },
        };
        let Some(m) = m else {
            // The connection ended: say why.
            while let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(200), events.recv()).await
            {
                if let mqtt_client::ConnectionEvent::Disconnected(e) = event {
                    return Err(format!("connection lost: {e}").into());
                }
            }
            return Err("connection lost".into());
        };
        if cli.no_retained && m.retain {
            continue;
        }
        if cli.verbose {
            let _ = write!(out, "{} ", m.topic());
        }
        let _ = out.write_all(m.payload());
        if cli.properties {
            let _ = write!(out, " {:?}", m.properties());
        }
        if !cli.no_newline {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
        received += 1;
        if cli.count.is_some_and(|c| received >= c) {
            break;
        }
    }
    Ok(client.disconnect().await?)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sub: {e}");
            ExitCode::FAILURE
        }
    }
}
