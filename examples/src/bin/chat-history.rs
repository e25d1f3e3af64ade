//! `chat-history`: the service behind the chat example (examples/web/chat),
//! MQTT 5 request/response over mqtt-client.
//!
//! Rooms are topics. A page posts a message as a request to
//! `chat/ROOM/post` (Response Topic and Correlation Data set); the service
//! keeps it (once, by its `id`: a page re-posts until it hears back),
//! publishes it to everyone in the room on `chat/ROOM/messages`, and
//! replies `{"ok":true}`. A request to `chat/ROOM/history` is answered with
//! the room's last messages as a JSON array, so a page that joins or
//! reconnects catches up with what it missed.
//!
//! ```text
//! chat-history --url mqtt://127.0.0.1:1883
//! ```

use clap::Parser;
use mqtt_client::{ClientBuilder, Message, ProtocolVersion, Publish, QoS};
use serde_json::{Value, json};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

/// Keep chat rooms' history and pass posts on to the room.
#[derive(Parser, Debug)]
#[command(name = "chat-history", version)]
struct Cli {
    /// Broker URL: mqtt://, mqtts://, ws:// or wss://.
    #[arg(short = 'L', long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    /// Messages kept per room.
    #[arg(long, default_value_t = 200)]
    keep: usize,
    /// Client identifier.
    #[arg(short = 'i', long, default_value = "chat-history")]
    id: String,
}

/// Longest text accepted, in bytes.
const MAX_TEXT: usize = 4000;
/// Longest id or name accepted, in bytes.
const MAX_NAME: usize = 64;

/// One room's recent messages and the ids already seen.
#[derive(Default)]
struct Room {
    messages: VecDeque<Value>,
    ids: HashSet<String>,
}

struct Rooms {
    rooms: HashMap<String, Room>,
    keep: usize,
}

impl Rooms {
    /// Takes a post: `Ok((message, true))` when it is new and must be
    /// passed on, `Ok((message, false))` for a repeat (the kept copy, or
    /// just the id when it is no longer kept).
    fn post(&mut self, room: &str, payload: &[u8]) -> Result<(Value, bool), String> {
        let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
        let field = |name: &str, max: usize| -> Result<String, String> {
            match v.get(name).and_then(Value::as_str) {
                Some(s) if !s.is_empty() && s.len() <= max => Ok(s.to_string()),
                _ => Err(format!("{name}: a string of 1 to {max} bytes is required")),
            }
        };
        let id = field("id", MAX_NAME)?;
        let from = field("from", MAX_NAME)?;
        let text = field("text", MAX_TEXT)?;
        if self.rooms.len() >= 10_000 && !self.rooms.contains_key(room) {
            return Err("too many rooms".into());
        }
        let r = self.rooms.entry(room.to_string()).or_default();
        if !r.ids.insert(id.clone()) {
            let kept = r.messages.iter().rev().find(|m| m["id"] == id.as_str());
            return Ok((kept.cloned().unwrap_or_else(|| json!({ "id": id })), false));
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let message = json!({ "id": id, "from": from, "text": text, "ts": ts });
        r.messages.push_back(message.clone());
        while r.messages.len() > self.keep {
            if let Some(old) = r.messages.pop_front()
                && let Some(id) = old.get("id").and_then(Value::as_str)
            {
                r.ids.remove(id);
            }
        }
        Ok((message, true))
    }

    fn history(&self, room: &str) -> Value {
        Value::Array(
            self.rooms
                .get(room)
                .map(|r| r.messages.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }
}

async fn handle(
    client: &mqtt_client::Client,
    rooms: &mut Rooms,
    p: &Publish,
) -> Result<(), mqtt_client::Error> {
    let mut levels = p.topic().split('/');
    let (Some("chat"), Some(room), Some(kind), None) =
        (levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return Ok(());
    };
    let reply = match kind {
        "post" => match rooms.post(room, p.payload()) {
            Ok((message, new)) => {
                if new {
                    let out = Message::new(&format!("chat/{room}/messages"), message.to_string())?
                        .qos(QoS::AtLeastOnce);
                    client.enqueue(out).await?;
                }
                json!({ "ok": true, "message": message })
            }
            Err(e) => json!({ "ok": false, "error": e }),
        },
        "history" => rooms.history(room),
        _ => return Ok(()),
    };
    if let Some(m) = Message::reply_to(p, reply.to_string()) {
        client.enqueue(m.qos(QoS::AtLeastOnce)).await?;
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let (client, mut messages) = ClientBuilder::new(&cli.url)?
        .version(ProtocolVersion::V5)
        .try_client_id(&cli.id)?
        .connect()
        .await?;
    for filter in ["chat/+/post", "chat/+/history"] {
        client.subscribe(filter, QoS::AtLeastOnce).await?;
    }
    println!(
        "chat-history: serving chat/+/post and chat/+/history at {}",
        cli.url
    );
    let mut rooms = Rooms {
        rooms: HashMap::new(),
        keep: cli.keep.max(1),
    };
    loop {
        tokio::select! {
            m = messages.recv() => match m {
                Some(p) => handle(&client, &mut rooms, &p).await?,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let _ = client.disconnect().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-history: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_kept_once_and_bounded() {
        let mut rooms = Rooms {
            rooms: HashMap::new(),
            keep: 2,
        };
        let post = |id: &str| format!(r#"{{"id":"{id}","from":"ann","text":"hi"}}"#);
        let (first, new) = rooms.post("a", post("1").as_bytes()).unwrap();
        assert!(new);
        assert_eq!(
            rooms.post("a", post("1").as_bytes()).unwrap(),
            (first, false)
        );
        assert!(rooms.post("a", post("2").as_bytes()).unwrap().1);
        assert!(rooms.post("a", post("3").as_bytes()).unwrap().1);
        let h = rooms.history("a");
        let ids: Vec<_> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["2", "3"]);
        assert!(rooms.post("a", b"{}").is_err());
        assert!(rooms.post("a", b"not json").is_err());
        assert_eq!(rooms.history("b"), json!([]));
    }
}
