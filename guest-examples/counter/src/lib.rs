//! `counter`: the smallest useful actor, and the workhorse of Pigeon's tests.
//!
//! Payloads are text commands:
//! - `inc` adds one, `add N` adds N; both reply with the new count;
//! - `get` replies with the count.
//!
//! When a message carries the header `op-id`, the actor also records that it
//! applied it: state key `applied/<op-id>` holds `"<times> <order>"`, where
//! `times` counts how often this id was applied (exactly-once means 1) and
//! `order` is the count right after it was applied (so tests can recover the
//! order in which messages were handled).
//!
//! Two more, for the tests of actors that move between nodes:
//! - a message with the headers `op-id` and `report-to` also sends, in
//!   the same turn, `note <op-id>@<node>` to the `report-to` actor, where
//!   `<node>` is the environment variable `NODE` (a node grants it with
//!   `pigeon up --guest-env NODE=...`): a ledger of where each message
//!   was handled that does not move with the actor;
//! - `note TEXT` counts `TEXT` in the state key `note/<TEXT>`.

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::messaging;
use pigeon::actor::state;
use pigeon::actor::types::{Delivery, Envelope, SendOptions};

struct Counter;

impl Guest for Counter {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8(message.payload).map_err(|_| "counter: payload is not UTF-8 text".to_string())?;
        let mut words = text.split_whitespace();
        let count = read_count();
        let new_count = match (words.next(), words.next()) {
            (Some("inc"), None) => count + 1,
            (Some("add"), Some(n)) => {
                let n: u64 = n.parse().map_err(|_| format!("counter: `add` takes a whole number, got `{n}`"))?;
                count.saturating_add(n)
            }
            (Some("get"), None) => return Ok(Some(count.to_string().into_bytes())),
            (Some("note"), Some(what)) => return Ok(Some(note(what).to_string().into_bytes())),
            _ => {
                return Err(format!("counter: unknown command `{text}` (try inc, add N, get)"));
            }
        };
        state::set("count", new_count.to_string().as_bytes());
        let header = |name: &str| message.headers.iter().find(|h| h.name == name).map(|h| h.value.clone());
        if let Some(op) = header("op-id") {
            record_applied(&op, new_count);
            if let Some(ledger) = header("report-to") {
                report(&ledger, &op)?;
            }
        }
        Ok(Some(new_count.to_string().into_bytes()))
    }
}

fn read_count() -> u64 {
    state::get("count").and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn record_applied(op_id: &str, order: u64) {
    let key = format!("applied/{op_id}");
    let times = state::get(&key)
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.split(' ').next().and_then(|t| t.parse::<u64>().ok()))
        .unwrap_or(0);
    state::set(&key, format!("{} {order}", times + 1).as_bytes());
}

/// Counts `what` in `note/<what>`; returns the new count.
fn note(what: &str) -> u64 {
    let key = format!("note/{what}");
    let seen = state::get(&key).and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0u64);
    state::set(&key, (seen + 1).to_string().as_bytes());
    seen + 1
}

/// Tells `ledger` that this turn handled `op_id`, and on which node.
fn report(ledger: &str, op_id: &str) -> Result<(), String> {
    let node = std::env::var("NODE").unwrap_or_else(|_| "?".to_string());
    let options = SendOptions {
        priority: 4,
        delivery: Delivery::Persistent,
        headers: Vec::new(),
        delay_ms: None,
        ttl_ms: None,
        dedup_key: None,
    };
    messaging::send(ledger, format!("note {op_id}@{node}").as_bytes(), &options)
        .map(drop)
        .map_err(|e| format!("counter: cannot report to `{ledger}`: {e:?}"))
}

export!(Counter);
