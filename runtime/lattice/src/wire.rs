//! What travels on the lattice's subjects, and how it is framed.
//!
//! Every payload is `[PROTOCOL][postcard]`: a node refuses (and logs) a
//! frame of a protocol it does not speak instead of misreading it.
//! Subjects, for a lattice called `L`:
//! - `pigeon.L.beat`: every node's [`Member`] announcement, once a beat;
//! - `pigeon.L.node.ID.OP`: requests to node `ID` (see [`Op`]), answered
//!   with a [`reply`] frame.

use serde::{Deserialize, Serialize};

/// The wire protocol's version, raised whenever a frame's shape changes
/// (4: the rows of a moving actor carry its counters).
pub const PROTOCOL: u8 = 4;

/// What a node announces about itself in every heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's id, stable across restarts.
    pub id: String,
    /// Made with the node's store: a new one under an old id means the
    /// node lost its disk.
    pub incarnation: String,
    /// Where its HTTP API listens.
    pub api: String,
    /// Pigeon's version on that node.
    pub version: String,
    /// The types it has deployed.
    pub types: Vec<TypeInfo>,
    /// The types undeployed there (and not deployed since), each with the
    /// time of its undeploy as `deployed_at_ms` and no hash.
    pub removed: Vec<TypeInfo>,
    /// Actors with a live or queued task.
    pub active_actors: u64,
    /// Messages waiting in its outbox, per peer.
    pub outbox: Vec<(String, u64)>,
    /// Messages it has forwarded to peers since it started.
    pub forwarded: u64,
    /// When it started (ms since the Unix epoch).
    pub started_ms: u64,
}

/// A deployed type as a heartbeat names it: enough for a peer to tell
/// whether its own copy is the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    pub name: String,
    /// Content hash of the component.
    pub hash: String,
    pub deployed_at_ms: u64,
    /// The epoch of its placement there: a peer that knows an older one
    /// asks for the newer (see the node's `handoff`).
    pub placement_epoch: u64,
}

/// The requests a node answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A batch from the sender's outbox: commit, then acknowledge.
    Deliver,
    /// A call made by a turn, answered once the callee's commit is durable.
    Call,
    /// A client operation on an actor this node owns (a send that waits
    /// for delivery or a reply, a read of its state).
    Proxy,
    /// A type deployed or undeployed on another node.
    Deploy,
    /// A piece of a component's bytes, by content hash.
    Component,
    /// A request to the node's HTTP API, made through another node.
    Api,
    /// Moving actors after a placement change: the change itself, the
    /// actors handed off, how far the moves are.
    Handoff,
}

impl Op {
    pub const ALL: [Op; 7] = [Op::Deliver, Op::Call, Op::Proxy, Op::Deploy, Op::Component, Op::Api, Op::Handoff];

    /// The op's subject token.
    pub fn token(self) -> &'static str {
        match self {
            Op::Deliver => "deliver",
            Op::Call => "call",
            Op::Proxy => "proxy",
            Op::Deploy => "deploy",
            Op::Component => "component",
            Op::Api => "api",
            Op::Handoff => "handoff",
        }
    }

    pub fn from_token(token: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.token() == token)
    }
}

/// A request as it travels: who sends it, and the op's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub from: String,
    pub incarnation: String,
    pub body: Vec<u8>,
}

/// Encodes a value with the protocol byte in front.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![PROTOCOL];
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

/// Decodes what [`encode`] made; any other bytes are an error, not a panic.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&PROTOCOL, rest)) => postcard::from_bytes(rest).map_err(|e| format!("malformed lattice frame: {e}")),
        Some((v, _)) => Err(format!("lattice protocol {v} is not spoken here (this node speaks {PROTOCOL})")),
        None => Err("empty lattice frame".into()),
    }
}

/// Answers: `[0][body]` for success, `[1][utf-8 error]` for a refusal.
pub mod reply {
    pub fn ok(body: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(0);
        out.extend(body);
        out
    }

    pub fn err(message: &str) -> Vec<u8> {
        let mut out = vec![1];
        out.extend_from_slice(message.as_bytes());
        out
    }

    pub fn read(bytes: &[u8]) -> Result<Vec<u8>, String> {
        match bytes.split_first() {
            Some((0, body)) => Ok(body.to_vec()),
            Some((1, message)) => Err(String::from_utf8_lossy(message).into_owned()),
            _ => Err("malformed lattice reply".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_other_protocols() {
        let member = Member { id: "a".into(), incarnation: "i".into(), ..Member::default() };
        let bytes = encode(&member);
        assert_eq!(decode::<Member>(&bytes).unwrap(), member);
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode::<Member>(&other).unwrap_err().contains("protocol 9"));
        assert!(decode::<Member>(&[PROTOCOL, 200, 200]).is_err());
        assert_eq!(reply::read(&reply::ok(b"x".to_vec())).unwrap(), b"x");
        assert_eq!(reply::read(&reply::err("no")).unwrap_err(), "no");
        for op in Op::ALL {
            assert_eq!(Op::from_token(op.token()), Some(op));
        }
    }
}
