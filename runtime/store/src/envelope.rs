//! The message envelope, as stored and as handed to the host.
//!
//! Every persistent message is one [`Envelope`] encoded with postcard behind a
//! one-byte format version, so a later release can read what an earlier one
//! wrote (and refuses, rather than misreads, what it does not know).

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::error::StoreError;

/// Highest message priority; 0 is the lowest.
pub const MAX_PRIORITY: u8 = 9;
/// The priority of a message that does not say.
pub const DEFAULT_PRIORITY: u8 = 4;

/// Format 2 added the RPC operation of a message and the links of a type;
/// format 1 was only ever written by development builds.
const FORMAT: u8 = 2;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    /// One-way.
    Send,
    /// Expects a reply.
    Call,
    /// The answer to a call.
    Reply,
    /// A copy of a topic publication.
    Publish,
    /// A publication on its way to another node, which copies it to its
    /// own subscribers; `to` is then the topic. It only ever sits in an
    /// outbox: no mailbox and no guest sees this kind.
    Relay,
}

/// How a message survives failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Durable before it is acknowledged.
    Persistent,
    /// In memory only.
    Transient,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id (ULID).
    pub id: Ulid,
    /// Sending actor, if the message came from one.
    pub from: Option<String>,
    /// Receiving actor (`type/key`).
    pub to: String,
    pub kind: MessageKind,
    /// 0 (lowest) to 9 (highest).
    pub priority: u8,
    pub delivery: Delivery,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
    /// Failed turns so far (crashes of the node do not count).
    pub failures: u32,
    /// Not to be handled before this time (ms since the Unix epoch).
    pub not_before_ms: Option<u64>,
    /// Handled no later than this time, or dead-lettered as expired.
    pub expires_at_ms: Option<u64>,
    /// Messages with the same key to the same actor are accepted once.
    pub dedup_key: Option<String>,
    /// Ids of the calls this message is nested in (deadlock detection).
    pub call_chain: Vec<String>,
    /// The error of the last failed turn.
    pub last_error: Option<String>,
    /// For a typed RPC call: the exported function it invokes,
    /// `interface#function` (e.g. `acme:bank/account@0.1.0#deposit`); the
    /// payload is then the arguments in Pigeon's value encoding.
    pub operation: Option<String>,
}

impl Envelope {
    /// A persistent one-way message with default priority.
    pub fn new(to: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            id: Ulid::new(),
            from: None,
            to: to.into(),
            kind: MessageKind::Send,
            priority: DEFAULT_PRIORITY,
            delivery: Delivery::Persistent,
            headers: Vec::new(),
            payload: payload.into(),
            failures: 0,
            not_before_ms: None,
            expires_at_ms: None,
            dedup_key: None,
            call_chain: Vec::new(),
            last_error: None,
            operation: None,
        }
    }

    /// Sets the priority (builder style).
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the kind (builder style).
    pub fn with_kind(mut self, kind: MessageKind) -> Self {
        self.kind = kind;
        self
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The attempt number the handler sees: 1 on first delivery.
    pub fn attempt(&self) -> u32 {
        self.failures.saturating_add(1)
    }

    /// The envelope as the store keeps it (and as it travels between nodes).
    pub fn encode(&self) -> Vec<u8> {
        encode_record(self)
    }

    /// An envelope from [`Envelope::encode`]'s bytes; `table` names where
    /// they came from in the error.
    pub fn decode(bytes: &[u8], table: &'static str) -> Result<Self, StoreError> {
        decode_record(bytes, table)
    }
}

/// Encodes any serde record with the same versioned framing.
pub fn encode_record<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

/// Decodes a record written by [`encode_record`]; anything else is a
/// [`StoreError::Corrupt`] naming `table`, never a panic.
pub fn decode_record<T: for<'de> Deserialize<'de>>(bytes: &[u8], table: &'static str) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| StoreError::Corrupt { table, reason: e.to_string() })
        }
        Some((1, _)) => Err(StoreError::Corrupt {
            table,
            reason:
                "record format 1 was written by a development build of Pigeon: start this node on a new data directory"
                    .into(),
        }),
        Some((v, _)) => Err(StoreError::Corrupt {
            table,
            reason: format!("unknown record format {v} (written by a newer Pigeon?)"),
        }),
        None => Err(StoreError::Corrupt { table, reason: "empty record".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_formats() {
        let env = Envelope::new("counter/a", b"inc".to_vec()).with_priority(7).with_header("k", "v");
        let bytes = env.encode();
        assert_eq!(Envelope::decode(&bytes, "t").unwrap(), env);
        let mut future = bytes.clone();
        future[0] = 99;
        let err = Envelope::decode(&future, "t").unwrap_err().to_string();
        assert!(err.contains("unknown record format 99"), "{err}");
    }
}
