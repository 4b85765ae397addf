//! `{{name}}`: a Pigeon actor. It replies to every message with its payload,
//! and counts the messages it has handled in its state.
//!
//! `wit_bindgen::generate!` turns `wit/actor.wit` into Rust: the imports
//! (`pigeon::actor::state`, `messaging`, `topics`, `logging`, `rpc`) are
//! plain functions, and the `handler` export is the `Guest` trait below.

wit_bindgen::generate!({ world: "actor", path: "wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::logging::{self, Level};
use pigeon::actor::state;
use pigeon::actor::types::Envelope;

struct Actor;

impl Guest for Actor {
    /// `Ok(Some(bytes))` completes the turn and replies; `Err(text)` rolls
    /// it back (state writes and sends included) and retries the message.
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let seen: u64 = state::get("seen")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        state::set("seen", (seen + 1).to_string().as_bytes());
        let sender = message.sender.as_deref().unwrap_or("outside");
        logging::log(Level::Info, &format!("message {} from {sender}", seen + 1));
        Ok(Some(message.payload))
    }
}

export!(Actor);
