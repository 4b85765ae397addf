//! `forwarder`: sends every message it receives on to another actor.
//!
//! The destination is the header `forward-to`; the forwarded message keeps
//! the payload, the priority and every other header. The send becomes real
//! only when the forwarder's turn commits, so a crash can never forward a
//! message twice or lose it.

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::messaging;
use pigeon::actor::types::{Delivery, Envelope, SendOptions};

struct Forwarder;

impl Guest for Forwarder {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let (to, headers): (Vec<_>, Vec<_>) = message.headers.into_iter().partition(|h| h.name == "forward-to");
        let to = to.into_iter().next().ok_or_else(|| "forwarder: missing header `forward-to`".to_string())?;
        let options = SendOptions {
            priority: message.priority,
            delivery: Delivery::Persistent,
            headers,
            delay_ms: None,
            ttl_ms: None,
            dedup_key: None,
        };
        let id = messaging::send(&to.value, &message.payload, &options)
            .map_err(|e| format!("forwarder: cannot send to {}: {e:?}", to.value))?;
        Ok(Some(id.into_bytes()))
    }
}

export!(Forwarder);
