//! `bank-old-teller`: a caller built against an older draft of
//! `acme:bank/account` (its `withdraw` took an `s32`). It exists to show the
//! deploy-time check of links: linking it to today's `account` type is
//! refused with the function whose signature differs.

wit_bindgen::generate!({ world: "acme:bank/old-teller", path: ["../../../wit", "wit"], generate_all });

use acme::bank::account;
use exports::pigeon::actor::handler::Guest;
use pigeon::actor::types::Envelope;

struct OldTeller;

impl Guest for OldTeller {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let amount = message.payload.len() as u32;
        let reply = match message.payload.first() {
            Some(b'd') => account::deposit(u64::from(amount)),
            Some(b'w') => account::withdraw(amount as i32),
            _ => Ok(account::balance()),
        };
        reply.map(|b| Some(b.to_string().into_bytes()))
    }
}

export!(OldTeller);
