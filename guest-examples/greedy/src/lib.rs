//! `greedy`: an actor that asks for more than a node allows, to show (and
//! test) that the node's limits hold for guests as they do for clients.
//!
//! Commands (text payloads); each replies what the host answered:
//! - `send-many N ADDR`: sends ADDR `inc` N times in one turn; replies
//!   `sent N`, or `refused after K: ERROR` at the first refused send;
//! - `set-big BYTES`: writes a state value of BYTES bytes;
//! - `set-many N BYTES`: writes N state values of BYTES bytes each;
//! - `reply-big BYTES`: replies with BYTES bytes;
//! - `header-big BYTES ADDR`: sends ADDR a message with a header of BYTES;
//! - `dedup-big BYTES ADDR`: sends ADDR a message with a dedup key of BYTES;
//! - `subscribe TOPIC FILTER`: subscribes with FILTER; replies `ok` or the
//!   error `subscribe` returned;
//! - `env`: replies with the environment it sees, `NAME=VALUE` lines (only
//!   what the type was deployed with: `pigeon deploy --env`).

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::types::{Delivery, Envelope, Header, SendOptions};
use pigeon::actor::{messaging, state, topics};

struct Greedy;

fn options() -> SendOptions {
    SendOptions {
        priority: 4,
        delivery: Delivery::Persistent,
        headers: Vec::new(),
        delay_ms: None,
        ttl_ms: None,
        dedup_key: None,
    }
}

fn number(word: Option<&str>) -> Result<usize, String> {
    word.and_then(|w| w.parse().ok()).ok_or_else(|| format!("greedy: expected a number, got {word:?}"))
}

impl Guest for Greedy {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        let mut words = text.splitn(3, ' ');
        let command = words.next().unwrap_or_default();
        let reply = match command {
            "env" => std::env::vars().map(|(k, v)| format!("{k}={v}\n")).collect(),
            "send-many" => {
                let n = number(words.next())?;
                let to = words.next().ok_or("greedy: send-many N ADDR")?;
                let mut reply = format!("sent {n}");
                for k in 0..n {
                    if let Err(e) = messaging::send(to, b"inc", &options()) {
                        reply = format!("refused after {k}: {e:?}");
                        break;
                    }
                }
                reply
            }
            "set-big" => {
                state::set("big", &vec![b'x'; number(words.next())?]);
                "ok".into()
            }
            "set-many" => {
                let n = number(words.next())?;
                let size = number(words.next())?;
                for i in 0..n {
                    state::set(&format!("many/{i}"), &vec![b'x'; size]);
                }
                "ok".into()
            }
            "reply-big" => return Ok(Some(vec![b'x'; number(words.next())?])),
            "header-big" | "dedup-big" => {
                let size = number(words.next())?;
                let to = words.next().ok_or("greedy: header-big BYTES ADDR")?;
                let mut options = options();
                if command == "header-big" {
                    options.headers = vec![Header { name: "big".into(), value: "x".repeat(size) }];
                } else {
                    options.dedup_key = Some("x".repeat(size));
                }
                match messaging::send(to, b"inc", &options) {
                    Ok(_) => "ok".into(),
                    Err(e) => format!("refused: {e:?}"),
                }
            }
            "subscribe" => {
                let topic = words.next().ok_or("greedy: subscribe TOPIC FILTER")?;
                match topics::subscribe(topic, words.next().unwrap_or_default()) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("refused: {e}"),
                }
            }
            _ => return Err(format!("greedy: unknown command `{text}`")),
        };
        Ok(Some(reply.into_bytes()))
    }
}

export!(Greedy);
