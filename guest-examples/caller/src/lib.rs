//! `caller`: calls other actors from inside its turn, to exercise
//! `messaging.call`.
//!
//! Commands (text payloads):
//! - `call ADDR REST...`: calls ADDR with REST; replies `ok:REPLY` or
//!   `error:ERROR` (a failed call does not fail the turn);
//! - `call-or-fail ADDR REST...`: calls ADDR with REST; replies `ok:REPLY`,
//!   or fails the turn with the call's error (so the turn is retried);
//! - `call-then-trap ADDR REST...`: calls ADDR, then traps on the first
//!   attempt; on the retry the same call is answered from the callee's
//!   stored reply, so the callee's effect happens once;
//! - `remind MS NAME`: sends itself `fired NAME` in MS milliseconds and
//!   remembers the reminder's id under state key `reminder/NAME`;
//! - `cancel NAME`: cancels that reminder; replies `true` if it was pending;
//! - `fired NAME`: appends NAME to state key `fired`;
//! - `time-calls N ADDR REST...`: calls ADDR with REST N times and replies
//!   with each call's round trip in nanoseconds, space-separated (for the
//!   benchmarks: the guest's own clock sees actor-to-actor latency only).

wit_bindgen::generate!({ world: "actor", path: "../../wit" });

use exports::pigeon::actor::handler::Guest;
use pigeon::actor::types::{Delivery, Envelope, SendOptions};
use pigeon::actor::{messaging, state};

struct Caller;

impl Guest for Caller {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        if let Some(reply) = reminders(&text)? {
            return Ok(reply);
        }
        if let Some(rest) = text.strip_prefix("time-calls ") {
            return time_calls(rest).map(|t| Some(t.into_bytes()));
        }
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
            Some("call-or-fail") if answer.starts_with("error:") => Err(format!("caller: the call failed: {answer}")),
            Some("call-or-fail") => Ok(Some(answer.into_bytes())),
            _ => Err(format!("caller: unknown command `{text}`")),
        }
    }
}

/// `N ADDR REST...`: N calls to ADDR, each one's round trip in nanoseconds.
fn time_calls(args: &str) -> Result<String, String> {
    let mut words = args.splitn(3, ' ');
    let (n, to, rest) = (words.next().unwrap_or(""), words.next(), words.next().unwrap_or(""));
    let n: usize = n.parse().map_err(|_| format!("caller: `time-calls` takes a count, got `{n}`"))?;
    let to = to.ok_or("caller: expected `time-calls N ADDR PAYLOAD`")?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = std::time::Instant::now();
        messaging::call(to, rest.as_bytes(), None).map_err(|e| format!("caller: call to {to} failed: {e:?}"))?;
        times.push(started.elapsed().as_nanos().to_string());
    }
    Ok(times.join(" "))
}

/// The reminder commands; `None` when `text` is not one of them.
fn reminders(text: &str) -> Result<Option<Option<Vec<u8>>>, String> {
    let words: Vec<&str> = text.split(' ').collect();
    match words.as_slice() {
        ["remind", ms, name] => {
            let delay: u64 = ms.parse().map_err(|_| format!("caller: bad delay `{ms}`"))?;
            let options = SendOptions {
                priority: 4,
                delivery: Delivery::Persistent,
                headers: Vec::new(),
                delay_ms: Some(delay),
                ttl_ms: None,
                dedup_key: None,
            };
            let id = messaging::send(&messaging::self_address(), format!("fired {name}").as_bytes(), &options)
                .map_err(|e| format!("caller: cannot schedule: {e:?}"))?;
            state::set(&format!("reminder/{name}"), id.as_bytes());
            Ok(Some(None))
        }
        ["cancel", name] => {
            let id = state::get(&format!("reminder/{name}")).ok_or(format!("caller: no reminder `{name}`"))?;
            let pending = messaging::cancel(&String::from_utf8_lossy(&id));
            Ok(Some(Some(pending.to_string().into_bytes())))
        }
        ["fired", name] => {
            let mut fired = state::get("fired").map(|f| String::from_utf8_lossy(&f).into_owned()).unwrap_or_default();
            fired.push_str(name);
            state::set("fired", fired.as_bytes());
            Ok(Some(None))
        }
        _ => Ok(None),
    }
}

export!(Caller);
