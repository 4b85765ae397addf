//! `chat-room`: members join rooms (topics) and hear what others say.
//!
//! Commands (text payloads):
//! - `join ROOM [FILTER]`: subscribes to ROOM, optionally with a filter over
//!   the headers of what is said (e.g. `lang = 'fr'`);
//! - `leave ROOM`;
//! - `say ROOM [LANG] TEXT`: publishes TEXT to ROOM with headers `from`
//!   (this member) and `lang` (default `en`).
//!
//! Everything a member hears is appended to its state key `heard`, one
//! `FROM: TEXT` line each, so tests can read the order.

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::types::{Envelope, Header, MessageKind};
use pigeon::actor::{messaging, state, topics};

struct ChatRoom;

impl Guest for ChatRoom {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        if message.kind == MessageKind::Publish {
            let from = message.headers.iter().find(|h| h.name == "from").map_or("?", |h| h.value.as_str());
            let mut heard = state::get("heard").map(|h| String::from_utf8_lossy(&h).into_owned()).unwrap_or_default();
            heard.push_str(&format!("{from}: {text}\n"));
            state::set("heard", heard.as_bytes());
            return Ok(None);
        }
        let mut words = text.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("join"), Some(room), filter) => {
                topics::subscribe(room, filter.unwrap_or("")).map_err(|e| format!("chat-room: {e}"))?;
                Ok(None)
            }
            (Some("leave"), Some(room), None) => {
                topics::unsubscribe(room);
                Ok(None)
            }
            (Some("say"), Some(room), Some(rest)) => {
                let (lang, said) = match rest.split_once(' ') {
                    Some((lang, said)) if lang.len() == 2 => (lang, said),
                    _ => ("en", rest),
                };
                let headers = vec![
                    Header { name: "from".into(), value: messaging::self_address() },
                    Header { name: "lang".into(), value: lang.into() },
                ];
                topics::publish(room, said.as_bytes(), &headers).map_err(|e| format!("chat-room: {e}"))?;
                Ok(None)
            }
            _ => Err(format!(
                "chat-room: unknown command `{text}` (join ROOM [FILTER], leave ROOM, say ROOM [LANG] TEXT)"
            )),
        }
    }
}

export!(ChatRoom);
