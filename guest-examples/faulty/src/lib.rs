//! `faulty`: an actor that misbehaves on command, to prove that the runtime
//! contains it.
//!
//! Commands (text payloads):
//! - `trap`: panics (a wasm trap);
//! - `err`: returns an error;
//! - `loop`: spins forever (stopped by the turn deadline);
//! - `bomb`: allocates memory until the limit stops it;
//! - `fail-until N`: fails while the attempt is below N, then succeeds and
//!   records the attempt under state key `succeeded-at`;
//! - `write-then-trap ADDR`: writes state key `dirty`, sends `inc` to ADDR,
//!   then traps: none of it may survive;
//! - `ok`: succeeds, counting successes under state key `ok`.

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::types::{Delivery, Envelope, SendOptions};
use pigeon::actor::{messaging, state};

struct Faulty;

impl Guest for Faulty {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some("trap"), None) => panic!("faulty: trap on command"),
            (Some("err"), None) => Err("faulty: error on command".into()),
            (Some("loop"), None) => spin(),
            (Some("bomb"), None) => bomb(),
            (Some("fail-until"), Some(n)) => {
                let n: u32 = n.parse().map_err(|_| format!("faulty: bad attempt `{n}`"))?;
                if message.attempt < n {
                    return Err(format!("faulty: failing attempt {} of {n}", message.attempt));
                }
                state::set("succeeded-at", message.attempt.to_string().as_bytes());
                Ok(None)
            }
            (Some("write-then-trap"), Some(addr)) => {
                state::set("dirty", b"yes");
                let options = SendOptions {
                    priority: 4,
                    delivery: Delivery::Persistent,
                    headers: Vec::new(),
                    delay_ms: None,
                    ttl_ms: None,
                    dedup_key: None,
                };
                messaging::send(addr, b"inc", &options).map_err(|e| format!("faulty: send failed: {e:?}"))?;
                panic!("faulty: trap after writing state and sending");
            }
            (Some("ok"), None) => {
                let n = state::get("ok")
                    .and_then(|v| String::from_utf8(v).ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                state::set("ok", (n + 1).to_string().as_bytes());
                Ok(None)
            }
            _ => Err(format!("faulty: unknown command `{text}`")),
        }
    }
}

fn spin() -> ! {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
    }
}

fn bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really committed.
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

export!(Faulty);
