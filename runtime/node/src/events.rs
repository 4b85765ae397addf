//! What a node announces as it works: the feed of the dashboard and of tests.
//!
//! Events go out on a broadcast channel. A slow listener misses events (it
//! is told how many) but never slows the node down.

use std::time::{Duration, SystemTime};

/// Something that happened on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// An actor was instantiated.
    Activated { actor: String },
    /// An actor was passivated (its instance dropped).
    Passivated { actor: String },
    /// A turn began.
    TurnStarted { actor: String, message: String, attempt: u32, at: SystemTime },
    /// New messages are in these actors' mailboxes (one event per store
    /// batch).
    Enqueued { actors: Vec<String> },
    /// A turn committed; `took` is the time spent in the guest.
    TurnCompleted { actor: String, message: String, attempt: u32, took: Duration },
    /// A turn failed; `retry_in_ms` is none when the message was dead-lettered.
    TurnFailed { actor: String, message: String, attempt: u32, error: String, retry_in_ms: Option<u64>, at: SystemTime },
    /// A transient message was dropped.
    Dropped { actor: String, reason: String },
}
