//! What a turn hands the committer: the effects of a completed turn
//! ([`TurnCommit`]) or the fate of a failed one ([`TurnFailure`]).

use crate::envelope::Envelope;
use crate::schema::{DeadReason, MessageKey};

/// The effects of one successful turn, committed atomically.
#[derive(Debug, Default)]
pub struct TurnCommit {
    /// The actor whose turn it was.
    pub actor: String,
    /// The persistent message handled (none for a transient one).
    pub taken: Option<MessageKey>,
    /// The handled message's id, and whether a caller wants its reply stored.
    pub message_id: Option<(ulid::Ulid, bool)>,
    /// State writes in order: `Some` sets, `None` deletes.
    pub state_writes: Vec<(String, Option<Vec<u8>>)>,
    /// Persistent messages sent during the turn.
    pub sends: Vec<Envelope>,
    /// The handler's reply, if any.
    pub reply: Option<Vec<u8>>,
    /// Subscriptions and publications made during the turn, in order.
    pub topics: Vec<TopicEffect>,
    /// Delayed messages to cancel (ignored unless sent by or to this actor).
    pub cancels: Vec<ulid::Ulid>,
    /// The turn read effects of commits that were not yet durable when it
    /// ran (its actor's earlier turns, or a callee's reply), the first of
    /// them submitted at this commit epoch: if any commit was refused or
    /// failed since, this one is refused too ([`crate::StoreError::DependencyLost`]).
    pub depends_on: Option<u64>,
    /// The handled message arrives with this commit: a persistent send
    /// handed to its actor before it was stored (the node's direct
    /// delivery), whose acceptance is this commit. It counts as accepted.
    pub arrived: bool,
}

impl TurnCommit {
    /// Whether committing this would change nothing durable: a transient
    /// message's turn that wrote no state, sent nothing persistent, and
    /// whose reply nobody needs stored (see [`Store::commit_turn`]).
    ///
    /// [`Store::commit_turn`]: crate::Store::commit_turn
    pub fn writes_nothing(&self) -> bool {
        self.taken.is_none()
            && !self.arrived
            && !matches!(self.message_id, Some((_, true)))
            && self.state_writes.is_empty()
            && self.sends.is_empty()
            && self.topics.is_empty()
            && self.cancels.is_empty()
    }
}

/// A publish/subscribe effect of a turn, applied when it commits.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicEffect {
    /// The turn's actor subscribes to `topic` with `filter` (validated).
    Subscribe { topic: String, filter: String },
    /// The turn's actor leaves `topic`.
    Unsubscribe { topic: String },
    /// A copy of `envelope` to every matching subscriber of `topic`.
    Publish { topic: String, envelope: Box<Envelope> },
}

/// A failed turn: the message is retried later or dead-lettered.
#[derive(Debug)]
pub struct TurnFailure {
    pub actor: String,
    /// The persistent message whose turn failed (none for a transient one).
    pub taken: Option<MessageKey>,
    /// The message with `failures` and `last_error` already updated.
    pub envelope: Envelope,
    pub disposition: Disposition,
    /// The message arrives with this record (see [`TurnCommit::arrived`]):
    /// a retry is stored for it although it was taken from no mailbox.
    pub arrived: bool,
}

/// What becomes of a message whose turn failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Back into the mailbox, at its original place, at this time.
    RetryAt { due_ms: u64 },
    /// Into the dead-letter queue.
    DeadLetter { reason: DeadReason },
}
