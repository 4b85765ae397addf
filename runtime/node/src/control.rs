//! Operator requests that change an actor from outside its turns: empty its
//! mailbox, delete its state.
//!
//! They cannot simply be store writes. The actor's task may hold a live
//! activation whose cache mirrors the committed state, a read-ahead of
//! mailbox entries, and commits still on their way: deleting behind its
//! back would serve a later turn stale state, or hand it messages that are
//! gone. So a request is queued on the actor's slot (creating the slot and
//! starting the task if the actor is passive) and the task runs it between
//! turns, once its in-flight commits have settled: the store clears in one
//! transaction, then the task drops its activation and read-ahead (and, for
//! a purge, the transient messages queued in memory), so the next turn
//! starts from what the store holds. A turn already running finishes first.

use std::time::Duration;

use pigeon_store::{ActorAddr, Clear};
use tokio::sync::oneshot;

use crate::{Node, NodeError};

/// How long a request waits for the actor's task (a running turn finishes
/// first; its deadline is at most this).
const WAIT: Duration = Duration::from_secs(60);

/// A request waiting in an actor's slot.
pub(crate) struct Control {
    pub(crate) what: Clear,
    pub(crate) done: oneshot::Sender<Result<usize, NodeError>>,
}

impl Node {
    /// Empties `address`'s mailbox (its delayed messages and in-memory
    /// transient ones too) or deletes its state, between its turns; returns
    /// how many entries went.
    pub async fn clear(&self, address: &str, what: Clear) -> Result<usize, NodeError> {
        let addr = ActorAddr::parse(address)?;
        let (done, answer) = oneshot::channel();
        self.inner.scheduler.with_slot(&self.inner, addr.as_str(), |slot| slot.controls().push(Control { what, done }));
        match tokio::time::timeout(WAIT, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NodeError::ShuttingDown),
            Err(_) => Err(NodeError::Timeout { to: address.to_string(), waited: WAIT }),
        }
    }
}
