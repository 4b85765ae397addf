//! The size limits of everything a node accepts, the same for clients (the
//! HTTP API, the CLI) and for guests (the host's imports).
//!
//! Each limit bounds memory or disk that one request or one turn can claim.
//! They are node-wide: `pigeon up --limit NAME=VALUE` changes one (sizes take
//! units: `--limit payload=4MiB`), and [`Limits::NAMES`] lists them with
//! their defaults. How each one is enforced:
//!
//! | limit | default | over it |
//! | --- | --- | --- |
//! | `payload` | 1 MiB | a client gets `payload_too_large`; a guest's `send`, `call` or `publish` returns `payload-too-large` |
//! | `reply` | 1 MiB | the turn fails, naming the limit |
//! | `headers` | 64 per message | a client gets `invalid_message`; a guest's turn fails |
//! | `header-bytes` | 16 KiB per message (names and values) | as `headers` |
//! | `dedup-key` | 1 KiB | as `headers` |
//! | `state-key` | 1 KiB | the turn fails |
//! | `state-value` | 1 MiB | the turn fails |
//! | `turn-state` | 16 MiB of keys and values written by one turn | the turn fails |
//! | `turn-sends` | 10,000 messages sent or published by one turn | the turn fails |
//!
//! A turn that fails is rolled back and retried like any other, then
//! dead-lettered with the error, so the guest's author sees which limit.
//! The mailbox bound of each type (`--mailbox-bound` at deploy) is checked at
//! `send` against the depth plus what the turn already sent there, and again
//! when the turn commits.

use std::fmt;

use crate::envelope::Envelope;

/// The node's limits (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub payload_bytes: usize,
    pub reply_bytes: usize,
    pub headers: usize,
    pub header_bytes: usize,
    pub dedup_key_bytes: usize,
    pub state_key_bytes: usize,
    pub state_value_bytes: usize,
    pub turn_state_bytes: usize,
    pub turn_sends: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            payload_bytes: 1 << 20,
            reply_bytes: 1 << 20,
            headers: 64,
            header_bytes: 16 << 10,
            dedup_key_bytes: 1 << 10,
            state_key_bytes: 1 << 10,
            state_value_bytes: 1 << 20,
            turn_state_bytes: 16 << 20,
            turn_sends: 10_000,
        }
    }
}

/// A message or a turn over one of the [`Limits`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {size}, over the limit `{limit}` of {max} (raise it with `pigeon up --limit {limit}=N`)")]
pub struct LimitError {
    /// What was too large, for people (`the payload`, `header `trace``).
    pub what: String,
    /// The limit's name, as `--limit` takes it.
    pub limit: &'static str,
    /// The size found (with its unit).
    pub size: String,
    /// The limit (with its unit).
    pub max: String,
}

/// Bytes, as the errors show them.
fn bytes(n: usize) -> String {
    format!("{n} bytes")
}

fn count(n: usize) -> String {
    n.to_string()
}

impl Limits {
    /// Every limit's name, with its default, for `--help` and errors.
    pub const NAMES: &'static [&'static str] = &[
        "payload",
        "reply",
        "headers",
        "header-bytes",
        "dedup-key",
        "state-key",
        "state-value",
        "turn-state",
        "turn-sends",
    ];

    fn slot(&mut self, name: &str) -> Option<&mut usize> {
        Some(match name {
            "payload" => &mut self.payload_bytes,
            "reply" => &mut self.reply_bytes,
            "headers" => &mut self.headers,
            "header-bytes" => &mut self.header_bytes,
            "dedup-key" => &mut self.dedup_key_bytes,
            "state-key" => &mut self.state_key_bytes,
            "state-value" => &mut self.state_value_bytes,
            "turn-state" => &mut self.turn_state_bytes,
            "turn-sends" => &mut self.turn_sends,
            _ => return None,
        })
    }

    /// Whether `name` is a limit; the error lists the known ones.
    pub fn check_name(name: &str) -> Result<(), String> {
        if Self::NAMES.contains(&name) {
            return Ok(());
        }
        Err(format!("no limit named `{name}` (limits: {})", Self::NAMES.join(", ")))
    }

    /// Sets the limit `name` to `value`.
    pub fn set(&mut self, name: &str, value: usize) -> Result<(), String> {
        Self::check_name(name)?;
        if value == 0 {
            return Err(format!("limit `{name}` must be above zero"));
        }
        if let Some(slot) = self.slot(name) {
            *slot = value;
        }
        Ok(())
    }

    /// The current value of every limit, by name.
    pub fn values(&self) -> Vec<(&'static str, usize)> {
        let mut copy = self.clone();
        Self::NAMES.iter().filter_map(|name| copy.slot(name).map(|v| (*name, *v))).collect()
    }

    fn over(what: impl Into<String>, limit: &'static str, size: String, max: String) -> LimitError {
        LimitError { what: what.into(), limit, size, max }
    }

    /// Checks the payload alone (clients get their own error for it).
    pub fn check_payload(&self, len: usize) -> Result<(), LimitError> {
        if len > self.payload_bytes {
            return Err(Self::over("the payload", "payload", bytes(len), bytes(self.payload_bytes)));
        }
        Ok(())
    }

    /// Checks what a message carries besides its payload: headers and
    /// dedup key.
    pub fn check_envelope(&self, envelope: &Envelope) -> Result<(), LimitError> {
        self.check_headers(&envelope.headers)?;
        envelope.dedup_key.as_deref().map_or(Ok(()), |key| self.check_dedup_key(key))
    }

    /// Checks a dedup key's size.
    pub fn check_dedup_key(&self, key: &str) -> Result<(), LimitError> {
        if key.len() > self.dedup_key_bytes {
            return Err(Self::over("the dedup key", "dedup-key", bytes(key.len()), bytes(self.dedup_key_bytes)));
        }
        Ok(())
    }

    /// Checks a message's headers: their number and total size.
    pub fn check_headers(&self, headers: &[(String, String)]) -> Result<(), LimitError> {
        if headers.len() > self.headers {
            return Err(Self::over("the number of headers", "headers", count(headers.len()), count(self.headers)));
        }
        let size: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        if size > self.header_bytes {
            return Err(Self::over("the headers' size", "header-bytes", bytes(size), bytes(self.header_bytes)));
        }
        Ok(())
    }

    /// Checks a handler's reply.
    pub fn check_reply(&self, len: usize) -> Result<(), LimitError> {
        if len > self.reply_bytes {
            return Err(Self::over("the reply", "reply", bytes(len), bytes(self.reply_bytes)));
        }
        Ok(())
    }

    /// Checks one state write, and `turn_total`: all state bytes the turn
    /// has written, this one included.
    pub fn check_state_write(&self, key: &str, value_len: usize, turn_total: usize) -> Result<(), LimitError> {
        if key.len() > self.state_key_bytes {
            return Err(Self::over("the state key", "state-key", bytes(key.len()), bytes(self.state_key_bytes)));
        }
        if value_len > self.state_value_bytes {
            let what = format!("the value of state key `{}`", shown(key));
            return Err(Self::over(what, "state-value", bytes(value_len), bytes(self.state_value_bytes)));
        }
        if turn_total > self.turn_state_bytes {
            let what = "the state written by this turn";
            return Err(Self::over(what, "turn-state", bytes(turn_total), bytes(self.turn_state_bytes)));
        }
        Ok(())
    }

    /// Checks the number of messages a turn sends, `sent` with this one.
    pub fn check_turn_sends(&self, sent: usize) -> Result<(), LimitError> {
        if sent > self.turn_sends {
            let what = "the number of messages this turn sent";
            return Err(Self::over(what, "turn-sends", count(sent), count(self.turn_sends)));
        }
        Ok(())
    }
}

/// A key as errors show it: at most 64 characters.
fn shown(key: &str) -> String {
    match key.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_string(),
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self.values().iter().map(|(n, v)| format!("{n}={v}")).collect();
        f.write_str(&values.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_sets_its_own_limit() {
        for (i, name) in Limits::NAMES.iter().enumerate() {
            let mut limits = Limits::default();
            limits.set(name, 7 + i).unwrap();
            let changed: Vec<_> =
                limits.values().into_iter().zip(Limits::default().values()).filter(|(a, b)| a != b).collect();
            assert_eq!(changed.len(), 1, "{name}");
            assert_eq!(changed[0].0, (*name, 7 + i));
        }
        let err = Limits::default().set("nope", 1).unwrap_err();
        assert!(err.contains("turn-sends"), "{err}");
        assert!(Limits::default().set("payload", 0).is_err());
    }

    #[test]
    fn errors_name_the_limit_and_how_to_raise_it() {
        let limits = Limits::default();
        let mut envelope = Envelope::new("a/b", Vec::new());
        envelope.headers = vec![("h".into(), "x".repeat(20_000))];
        let err = limits.check_envelope(&envelope).unwrap_err().to_string();
        assert_eq!(
            err,
            "the headers' size is 20001 bytes, over the limit `header-bytes` of 16384 bytes (raise it with `pigeon up --limit header-bytes=N`)"
        );
        envelope.headers = (0..65).map(|i| (format!("h{i}"), String::new())).collect();
        assert!(limits.check_envelope(&envelope).unwrap_err().to_string().contains("`headers` of 64"));
        envelope.headers.clear();
        envelope.dedup_key = Some("k".repeat(1025));
        assert!(limits.check_envelope(&envelope).unwrap_err().to_string().contains("`dedup-key`"));
        let err = limits.check_state_write(&"k".repeat(100), 2 << 20, 2 << 20).unwrap_err().to_string();
        assert!(err.contains("`state-value`") && err.contains(&format!("{}…", "k".repeat(64))), "{err}");
        assert!(limits.check_state_write("k", 10, 17 << 20).unwrap_err().to_string().contains("`turn-state`"));
        assert!(limits.check_turn_sends(10_001).is_err() && limits.check_turn_sends(10_000).is_ok());
        assert!(limits.check_reply(1 << 20).is_ok() && limits.check_reply((1 << 20) + 1).is_err());
    }
}
