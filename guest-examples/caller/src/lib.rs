//! `caller`: calls other actors from inside its turn, to exercise
//! `messaging.call`.
//!
//! Commands (text payloads):
//! - `call ADDR REST...`: calls ADDR with REST; replies `ok:REPLY` or
//!   `error:ERROR` (a failed call does not fail the turn);
//! - `call-then-trap ADDR REST...`: calls ADDR, then traps on the first
//!   attempt; on the retry the same call is answered from the callee's
//!   stored reply, so the callee's effect happens once.

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::messaging;
use pigeon::actor::types::Envelope;

struct Caller;

impl Guest for Caller {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        let mut words = text.splitn(3, ' ');
        let (command, to, rest) = (words.next(), words.next(), words.next().unwrap_or(""));
        let Some(to) = to else { return Err(format!("caller: expected `call ADDR PAYLOAD`, got `{text}`")) };
        let answer = match messaging::call(to, rest.as_bytes(), None) {
            Ok(reply) => format!("ok:{}", String::from_utf8_lossy(&reply.unwrap_or_default())),
            Err(e) => format!("error:{e:?}"),
        };
        match command {
            Some("call") => Ok(Some(answer.into_bytes())),
            Some("call-then-trap") if message.attempt == 1 => panic!("caller: trap after the call, on attempt 1"),
            Some("call-then-trap") => Ok(Some(answer.into_bytes())),
            _ => Err(format!("caller: unknown command `{text}`")),
        }
    }
}

export!(Caller);
